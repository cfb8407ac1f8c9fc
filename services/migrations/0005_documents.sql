-- Uploaded course documents (PDFs) and their indexing into the vector store.
-- Indexing a document is a job like a generation (same table, same outbox, same
-- /ai/jobs/{id}), of kind 'index', tied to a document instead of a lesson.
CREATE TABLE documents (
    id uuid PRIMARY KEY,
    course_id uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL,
    filename text NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes > 0),
    sha256 text NOT NULL,
    storage_key text NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'indexing', 'indexed', 'failed')),
    pages_done integer NOT NULL DEFAULT 0,
    pages_total integer,
    chunk_count integer NOT NULL DEFAULT 0,
    error text,
    job_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Uploading a file of the same name to a course replaces that document.
    UNIQUE (course_id, filename)
);

ALTER TABLE ai_jobs ALTER COLUMN lesson_id DROP NOT NULL;
ALTER TABLE ai_jobs DROP CONSTRAINT ai_jobs_kind_check;
ALTER TABLE ai_jobs
    ADD CONSTRAINT ai_jobs_kind_check
        CHECK (kind IN ('quiz', 'summary', 'explanation', 'index')),
    ADD COLUMN document_id uuid REFERENCES documents (id) ON DELETE CASCADE,
    ADD CONSTRAINT ai_jobs_has_a_subject
        CHECK ((kind = 'index') = (document_id IS NOT NULL AND lesson_id IS NULL));
CREATE INDEX ai_jobs_document_idx ON ai_jobs (document_id) WHERE document_id IS NOT NULL;
