-- Courses, lessons, quizzes and attempts of the Course service. Owners are user ids from
-- tokens; no foreign key to users, which belongs to another service.
CREATE TABLE courses (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Keyset pagination walks (created_at, id) newest first.
CREATE INDEX courses_created_idx ON courses (created_at DESC, id DESC);

CREATE TABLE lessons (
    id uuid PRIMARY KEY,
    course_id uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    position integer NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (course_id, position)
);

CREATE TABLE quizzes (
    id uuid PRIMARY KEY,
    course_id uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    lesson_id uuid NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    title text NOT NULL,
    questions jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quizzes_course_idx ON quizzes (course_id);

CREATE TABLE quiz_attempts (
    id uuid PRIMARY KEY,
    quiz_id uuid NOT NULL REFERENCES quizzes (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    score integer NOT NULL,
    total integer NOT NULL,
    answers jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quiz_attempts_quiz_idx ON quiz_attempts (quiz_id);
