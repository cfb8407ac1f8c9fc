"""Request and response bodies of the Course service.

Every string and list has a limit, every request refuses unknown fields, so bad input is
a 422 naming the field and no request can grow a row without bound.
"""

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

__all__ = [
    "AttemptRequest",
    "AttemptResult",
    "Course",
    "CourseCreate",
    "CoursePage",
    "CourseReport",
    "CourseSummary",
    "CourseUpdate",
    "Lesson",
    "LessonCreate",
    "LessonTitle",
    "PublicQuestion",
    "Question",
    "Quiz",
    "QuizCreate",
    "QuizReport",
]

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
Choice = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
MAX_QUESTIONS = 100
MAX_CHOICES = 10


class _Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of request bodies: unknown fields are an error, not silently dropped."""


class CourseCreate(_Request):
    """A new course, owned by the instructor who creates it."""

    title: Title
    description: Description = ""


class CourseUpdate(_Request):
    """Fields of a course to change; omitted ones stay."""

    title: Title | None = None
    description: Description | None = None


class LessonTitle(msgspec.Struct, kw_only=True):
    """A lesson as listed on its course."""

    id: uuid.UUID
    position: int
    title: str


class Course(msgspec.Struct, kw_only=True):
    """A course with its lessons' titles, as the catalogue shows it."""

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str
    created_at: datetime
    updated_at: datetime
    lessons: list[LessonTitle] = msgspec.field(default_factory=list)


class CourseSummary(msgspec.Struct, kw_only=True):
    """A course in a catalogue page."""

    id: uuid.UUID
    title: str
    description: str
    created_at: datetime


class CoursePage(msgspec.Struct, kw_only=True):
    """One page of the catalogue; pass `next_cursor` back as `cursor` for the next."""

    items: list[CourseSummary]
    next_cursor: str | None


class LessonCreate(_Request):
    """A lesson; appended after the last one unless a position is given."""

    title: Title
    body: Body
    position: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None


class Lesson(msgspec.Struct, kw_only=True):
    """A lesson's full content."""

    id: uuid.UUID
    course_id: uuid.UUID
    position: int
    title: str
    body: str


class Question(_Request):
    """A multiple-choice question; `answer_index` points into `choices`."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    choices: Annotated[list[Choice], msgspec.Meta(min_length=2, max_length=MAX_CHOICES)]
    answer_index: Annotated[int, msgspec.Meta(ge=0, lt=MAX_CHOICES)]


class QuizCreate(_Request):
    """A quiz on one lesson of the course."""

    lesson_id: uuid.UUID
    questions: Annotated[list[Question], msgspec.Meta(min_length=1, max_length=MAX_QUESTIONS)]
    title: Title = "Quiz"


class PublicQuestion(msgspec.Struct, kw_only=True):
    """A question as a learner sees it: no answer."""

    prompt: str
    choices: list[str]


class Quiz(msgspec.Struct, kw_only=True):
    """A quiz as a learner sees it."""

    id: uuid.UUID
    course_id: uuid.UUID
    lesson_id: uuid.UUID
    title: str
    questions: list[PublicQuestion]


class AttemptRequest(_Request):
    """The chosen choice index for each question, in order."""

    answers: Annotated[
        list[Annotated[int, msgspec.Meta(ge=0, lt=MAX_CHOICES)]],
        msgspec.Meta(min_length=1, max_length=MAX_QUESTIONS),
    ]


class AttemptResult(msgspec.Struct, kw_only=True):
    """How an attempt scored; `correct[i]` tells whether answer i was right."""

    attempt_id: uuid.UUID
    score: int
    total: int
    correct: list[bool]


class QuizReport(msgspec.Struct, kw_only=True):
    """Attempt statistics of one quiz."""

    quiz_id: uuid.UUID
    title: str
    questions: int
    attempts: int
    learners: int
    mean_score: float | None
    best_score: int | None


class CourseReport(msgspec.Struct, kw_only=True):
    """Attempt statistics per quiz of a course, read from the replicas."""

    course_id: uuid.UUID
    quizzes: list[QuizReport]
