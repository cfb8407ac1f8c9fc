"""SQL for quizzes, attempts and the attempt report."""

import uuid

import msgspec
from psycopg.types.json import Jsonb

from services.course.schemas import (
    AttemptResult,
    CourseReport,
    PublicQuestion,
    Question,
    Quiz,
    QuizCreate,
    QuizReport,
)
from services.runtime.database import Connection
from services.runtime.errors import FieldError, InvalidInput, NotFound
from services.runtime.tokens import Principal

__all__ = ["create_quiz", "grade_attempt", "load_quiz", "quiz_report"]


async def create_quiz(conn: Connection, course_id: uuid.UUID, data: QuizCreate) -> Quiz:
    """Insert a quiz on a lesson of `course_id`; each answer must point at a choice."""
    errors = [
        FieldError(f"questions[{index}].answer_index", "must index one of the question's choices")
        for index, question in enumerate(data.questions)
        if question.answer_index >= len(question.choices)
    ]
    if errors:
        raise InvalidInput(errors)
    cursor = await conn.execute(
        "SELECT 1 FROM lessons WHERE id = %s AND course_id = %s", (data.lesson_id, course_id)
    )
    if await cursor.fetchone() is None:
        raise InvalidInput([FieldError("lesson_id", "no such lesson in this course")])
    quiz_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO quizzes (id, course_id, lesson_id, title, questions)"
        " VALUES (%s, %s, %s, %s, %s)",
        (
            quiz_id,
            course_id,
            data.lesson_id,
            data.title,
            Jsonb(msgspec.to_builtins(data.questions)),
        ),
    )
    return _public(quiz_id, course_id, data.lesson_id, data.title, data.questions)


def _public(
    quiz_id: uuid.UUID,
    course_id: uuid.UUID,
    lesson_id: uuid.UUID,
    title: str,
    questions: list[Question],
) -> Quiz:
    return Quiz(
        id=quiz_id,
        course_id=course_id,
        lesson_id=lesson_id,
        title=title,
        questions=[PublicQuestion(prompt=q.prompt, choices=q.choices) for q in questions],
    )


async def _questions(
    conn: Connection, quiz_id: uuid.UUID
) -> tuple[dict[str, object], list[Question]]:
    # A generated quiz stays a draft until its instructor publishes the questions as a
    # quiz of their own: learners neither see nor take unreviewed LLM output.
    cursor = await conn.execute(
        "SELECT id, course_id, lesson_id, title, questions FROM quizzes"
        " WHERE id = %s AND status = 'published'",
        (quiz_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"No quiz {quiz_id}")
    return row, msgspec.convert(row["questions"], list[Question])


async def load_quiz(conn: Connection, quiz_id: uuid.UUID) -> Quiz:
    """A quiz without its answers; 404 if missing."""
    row, questions = await _questions(conn, quiz_id)
    return _public(row["id"], row["course_id"], row["lesson_id"], row["title"], questions)  # type: ignore[arg-type]


async def grade_attempt(
    conn: Connection, quiz_id: uuid.UUID, principal: Principal, answers: list[int]
) -> tuple[uuid.UUID, AttemptResult]:
    """Score `answers`, record the attempt; the quiz's course and the score."""
    row, questions = await _questions(conn, quiz_id)
    if len(answers) != len(questions):
        raise InvalidInput(
            [FieldError("answers", f"expected {len(questions)} answers, one per question")]
        )
    errors = [
        FieldError(f"answers[{index}]", f"must be from 0 to {len(question.choices) - 1}")
        for index, (answer, question) in enumerate(zip(answers, questions, strict=True))
        if answer >= len(question.choices)
    ]
    if errors:
        raise InvalidInput(errors)
    correct = [
        answer == question.answer_index for answer, question in zip(answers, questions, strict=True)
    ]
    attempt_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO quiz_attempts (id, quiz_id, user_id, score, total, answers)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (attempt_id, quiz_id, principal.user_id, sum(correct), len(correct), Jsonb(answers)),
    )
    course_id: uuid.UUID = row["course_id"]  # type: ignore[assignment]
    return course_id, AttemptResult(
        attempt_id=attempt_id, score=sum(correct), total=len(correct), correct=correct
    )


async def quiz_report(conn: Connection, course_id: uuid.UUID) -> CourseReport:
    """Attempts, learners, mean and best score per quiz of the course."""
    cursor = await conn.execute(
        "SELECT q.id AS quiz_id, q.title, jsonb_array_length(q.questions) AS questions,"
        " count(a.id) AS attempts, count(DISTINCT a.user_id) AS learners,"
        " round(avg(a.score)::numeric, 2)::float8 AS mean_score, max(a.score) AS best_score"
        " FROM quizzes q LEFT JOIN quiz_attempts a ON a.quiz_id = q.id"
        " WHERE q.course_id = %s GROUP BY q.id, q.title, q.questions, q.created_at"
        " ORDER BY q.created_at, q.id",
        (course_id,),
    )
    rows = await cursor.fetchall()
    return CourseReport(course_id=course_id, quizzes=[QuizReport(**row) for row in rows])
