-- Refresh tokens of the Auth service. A password login starts a family; each refresh
-- marks the presented token used and adds its successor to the same family. A used token
-- presented again means two parties hold the chain (RFC 9700 §4.14.2), so the family is
-- revoked, successor included; logout revokes one family, a password change all of a
-- user's. Only the SHA-256 of a token is stored: tokens are 256 random bits, so the hash
-- cannot be reversed by guessing, and a copy of this table grants nothing.
-- The app role gets its rights on these tables from 0003's default privileges, as for
-- every table since; the keys are uuids and hashes, so there is no sequence to grant.
CREATE TABLE refresh_families (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse', 'password_change')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    issued_at timestamptz NOT NULL DEFAULT now(),
    -- issued_at + REFRESH_TTL_SECONDS: a login lasts while it is used at least that often.
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
