"""HTTP handlers of the Course service.

Writes go to the writer and then tell the content cache; catalogue reads go through the
cache to a replica; the report reads replicas only. Views, reads and attempts are emitted
as analytics events (buffered: emitting never slows or fails the request).
"""

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from services.analytics.emitter import EventEmitter
from services.analytics.events import (
    LessonRead,
    LessonReadProps,
    QuizAttempted,
    QuizAttemptedProps,
    stable_event_id,
)
from services.course.catalogue import (
    add_lesson,
    create_course,
    list_courses,
    load_course,
    load_lesson,
    require_owner,
    update_course,
)
from services.course.content_cache import ContentCache, course_key, lesson_key, quiz_key
from services.course.quizzes import create_quiz, grade_attempt, load_quiz, quiz_report
from services.course.responses import cacheable
from services.course.schemas import (
    AttemptRequest,
    AttemptResult,
    Course,
    CourseCreate,
    CourseReport,
    CourseUpdate,
    Lesson,
    LessonCreate,
    Quiz,
    QuizCreate,
)
from services.runtime.errors import FieldError, InvalidInput, NotFound, ServiceError
from services.runtime.hot_path import missed
from services.runtime.resources import Resources
from services.runtime.tokens import Principal, require_instructor

__all__ = ["CourseController", "QuizController"]


def _viewer(request: Request[Any, Any, Any], resources: Resources) -> uuid.UUID | None:
    """The signed-in caller of a public route, if any (a bad token is just anonymous)."""
    if "authorization" not in request.headers:
        return None
    try:
        return resources.tokens.principal_of(request).user_id
    except ServiceError:
        return None


def _cache(resources: NamedDependency[Resources]) -> ContentCache:
    settings = resources.settings
    return ContentCache(
        resources.databases,
        resources.redis,
        ttl_seconds=settings.content_cache_ttl_seconds,
        read_your_writes_seconds=settings.read_your_writes_seconds,
    )


class CourseController(Controller):
    """Courses, their lessons and quizzes, and the attempt report."""

    path = "/courses"
    tags = ["courses"]  # noqa: RUF012 - Litestar reads this class attribute

    @post("/", operation_id="create_course", summary="Create a course (instructors)")
    async def create(
        self,
        data: JSONBody[CourseCreate],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
    ) -> Course:
        """The caller becomes the course's owner."""
        require_instructor(principal)
        async with resources.databases.writer() as conn:
            course_id = await create_course(conn, principal, data.title, data.description)
            course = await load_course(conn, course_id)
        assert course is not None  # noqa: S101 - just inserted on this connection
        await _cache(resources).written(course_id)
        return course

    @get("/", operation_id="list_courses", summary="Browse the catalogue, newest first")
    async def browse(
        self,
        request: Request[Any, Any, Any],
        resources: NamedDependency[Resources],
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> Response[bytes]:
        """From a replica; `q` filters by text in the title or description."""
        async with resources.databases.reader() as conn:
            page = await list_courses(conn, limit=limit, cursor=cursor, text=q)
        max_age = resources.settings.catalogue_max_age_seconds
        return cacheable(request, msgspec.json.encode(page), max_age=max_age, public=True)

    @get("/{course_id:uuid}", operation_id="get_course", summary="A course with its lessons")
    async def detail(
        self,
        request: Request[Any, Any, Any],
        course_id: FromPath[uuid.UUID],
        resources: NamedDependency[Resources],
        events: NamedDependency[EventEmitter],
    ) -> Response[bytes]:
        """Cached; 304 when the client's ETag still matches."""
        key = course_key(course_id)
        body = await _cache(resources).read(
            key,
            course_id,
            lambda conn: load_course(conn, course_id),
            known_miss=missed(request.scope["state"], key),
        )
        if body is None:
            raise NotFound(f"No course {course_id}")
        events.emit_view(_viewer(request, resources), course_id)
        max_age = resources.settings.catalogue_max_age_seconds
        return cacheable(request, body, max_age=max_age, public=True)

    @patch("/{course_id:uuid}", operation_id="update_course", summary="Edit a course (owner)")
    async def update(
        self,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[CourseUpdate],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
    ) -> Course:
        """Only the owner; the cached course is dropped after the commit."""
        changes = {
            name: value
            for name, value in (("title", data.title), ("description", data.description))
            if value is not None
        }
        if not changes:
            raise InvalidInput([FieldError("body", "send at least one of title, description")])
        async with resources.databases.writer() as conn:
            await require_owner(conn, course_id, principal)
            await update_course(conn, course_id, changes)
            course = await load_course(conn, course_id)
        await _cache(resources).written(course_id)
        if course is None:
            raise NotFound(f"No course {course_id}")
        return course

    @post("/{course_id:uuid}/lessons", operation_id="add_lesson", summary="Add a lesson (owner)")
    async def add_lesson(
        self,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[LessonCreate],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
    ) -> Lesson:
        """Appended after the last lesson unless `position` says otherwise."""
        async with resources.databases.writer() as conn:
            await require_owner(conn, course_id, principal)
            lesson = await add_lesson(conn, course_id, data.title, data.body, data.position)
        await _cache(resources).written(course_id, lesson_key(course_id, lesson.id))
        return lesson

    @get(
        "/{course_id:uuid}/lessons/{lesson_id:uuid}",
        operation_id="get_lesson",
        summary="Read a lesson",
    )
    async def lesson(  # noqa: PLR0917 - Litestar injects these by name
        self,
        request: Request[Any, Any, Any],
        course_id: FromPath[uuid.UUID],
        lesson_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
        events: NamedDependency[EventEmitter],
    ) -> Response[bytes]:
        """Any signed-in user; cached like the course."""
        body = await _cache(resources).read(
            lesson_key(course_id, lesson_id),
            course_id,
            lambda conn: load_lesson(conn, course_id, lesson_id),
        )
        if body is None:
            raise NotFound(f"No lesson {lesson_id} in course {course_id}")
        events.emit(
            LessonRead(
                user_id=principal.user_id,
                course_id=course_id,
                props=LessonReadProps(lesson_id=lesson_id),
            )
        )
        max_age = resources.settings.catalogue_max_age_seconds
        return cacheable(request, body, max_age=max_age, public=False)

    @post("/{course_id:uuid}/quizzes", operation_id="create_quiz", summary="Add a quiz (owner)")
    async def add_quiz(
        self,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[QuizCreate],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
    ) -> Quiz:
        """Answers are stored but never shown to learners."""
        async with resources.databases.writer() as conn:
            await require_owner(conn, course_id, principal)
            quiz = await create_quiz(conn, course_id, data)
        cache = _cache(resources)
        await cache.written(course_id)
        await cache.store(quiz_key(quiz.id), msgspec.json.encode(quiz))
        return quiz

    @get(
        "/{course_id:uuid}/report",
        operation_id="course_report",
        summary="Attempt statistics per quiz (owner; read replicas only)",
    )
    async def report(
        self,
        course_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
    ) -> CourseReport:
        """Never on the writer: 503 when replicas are configured and none answers."""
        async with resources.databases.replica() as conn:
            await require_owner(conn, course_id, principal)
            return await quiz_report(conn, course_id)


class QuizController(Controller):
    """Taking quizzes."""

    path = "/quizzes"
    tags = ["quizzes"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/{quiz_id:uuid}", operation_id="get_quiz", summary="A quiz, without its answers")
    async def quiz(
        self,
        request: Request[Any, Any, Any],
        quiz_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
    ) -> Response[bytes]:
        """Written through to the cache at creation, so a new quiz is readable at once."""
        del principal  # signed-in users only

        async def load(conn: Any) -> Quiz | None:
            try:
                return await load_quiz(conn, quiz_id)
            except NotFound:
                return None

        body = await _cache(resources).read(quiz_key(quiz_id), None, load)
        if body is None:
            raise NotFound(f"No quiz {quiz_id}")
        max_age = resources.settings.catalogue_max_age_seconds
        return cacheable(request, body, max_age=max_age, public=False)

    @post(
        "/{quiz_id:uuid}/attempts",
        operation_id="attempt_quiz",
        summary="Answer a quiz and get the score",
        status_code=201,
    )
    async def attempt(
        self,
        quiz_id: FromPath[uuid.UUID],
        data: JSONBody[AttemptRequest],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
        events: NamedDependency[EventEmitter],
    ) -> AttemptResult:
        """Graded against the answers on the writer; the attempt is recorded."""
        async with resources.databases.writer() as conn:
            course_id, result = await grade_attempt(conn, quiz_id, principal, data.answers)
        events.emit(
            QuizAttempted(
                event_id=stable_event_id("quiz_attempted", result.attempt_id),
                user_id=principal.user_id,
                course_id=course_id,
                props=QuizAttemptedProps(
                    quiz_id=quiz_id,
                    attempt_id=result.attempt_id,
                    score=result.score,
                    total=result.total,
                ),
            )
        )
        return result
