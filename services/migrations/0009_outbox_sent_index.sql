-- The relay's retention sweep deletes rows sent more than a day ago. Without an index on
-- sent_at that DELETE read the whole table, which holds a day of sent rows (millions at
-- production's rate), and the relay ran it after every batch it delivered. Partial: the
-- unsent rows, which the relay reads by id (outbox_unsent_idx), are not in it.
-- A plain CREATE INDEX (a migration runs in a transaction) blocks writes to the outbox
-- while it builds; on a day of rows that is seconds, at the deploy that adds it.
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
