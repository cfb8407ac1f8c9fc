-- AI generation jobs and the transactional outbox that carries them to Kafka.
-- A job and its outbox row are written in one transaction, so an accepted job is never
-- lost; the relay marks a row sent only after the broker acknowledged it.
CREATE TABLE ai_jobs (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    course_id uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    lesson_id uuid NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('quiz', 'summary', 'explanation')),
    instructions text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead_lettered')),
    attempts integer NOT NULL DEFAULT 0,
    result jsonb,
    error text,
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ai_jobs_idempotency_key ON ai_jobs (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea,
    value bytea NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;

-- Generated quizzes are saved as drafts of their course, once per job.
ALTER TABLE quizzes
    ADD COLUMN status text NOT NULL DEFAULT 'published' CHECK (status IN ('draft', 'published')),
    ADD COLUMN source_job_id uuid UNIQUE;
