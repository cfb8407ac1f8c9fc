-- A counter bumped by every profile UPDATE the Auth service makes. The write-through cache
-- stores it beside the profile and writes only over an older entry, so when two updates
-- commit A then B but reach Redis B then A, A cannot replace B. A counter rather than
-- updated_at: an UPDATE that waited for another's row lock computes now() from its own
-- (earlier) start, so timestamps need not follow commit order; the counter does.
ALTER TABLE users ADD COLUMN profile_version bigint NOT NULL DEFAULT 1;
