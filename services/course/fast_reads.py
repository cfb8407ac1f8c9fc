"""The Course service's cached read in the fast lane: `GET /courses/{id}` on a hit.

The same answer as `CourseController.detail` on a hit (the cached bytes, their ETag,
Cache-Control and Vary, 304 when `If-None-Match` names the ETag) and the same
`course_viewed` event, without Litestar's routing and injection. A miss, a course id not
written in the canonical lower-case form, or Redis not answering goes to the handler,
which reads through the cache with read-your-writes as before.
"""

import re
import uuid

from litestar import Litestar

from services.analytics.emitter import EventEmitter
from services.course.content_cache import course_key
from services.course.responses import matches, validators
from services.runtime.errors import ServiceError
from services.runtime.hot_path import Answer, FastRequest, FastRoutes, Recent, cached_entry
from services.runtime.resources import Resources

__all__ = ["course_fast_routes"]

_PREFIX = "/courses/"
_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_JSON = (b"content-type", b"application/json")


def course_fast_routes(app: Litestar) -> FastRoutes:
    """`GET /courses/{id}` for `app`, whose lifespan opens what it reads."""
    state = app.state  # read by item: by attribute, a miss on its slots first costs ~6x

    async def course_detail(request: FastRequest) -> Answer | None:
        course = courses.get(request.path)
        if course is None:
            text = request.path[len(_PREFIX) :]
            if not _CANONICAL_ID.fullmatch(text):
                return None  # another route, or an id Litestar parses in another spelling
            course_id = uuid.UUID(text)
            course = courses.remember(request.path, (course_id, course_key(course_id)))
        course_id, key = course
        body = await cached_entry(state["cached_get"], request, key)
        if body is None:
            return None
        resources: Resources = state["resources"]
        events: EventEmitter = state["events"]
        events.emit_view(_viewer(request, resources), course_id)
        known = answers.get(body)
        if known is None:
            known = answers.remember(
                body, _answers(body, resources.settings.catalogue_max_age_seconds)
            )
        etag, ok, not_modified = known
        if_none_match = request.headers.get(b"if-none-match")
        if if_none_match is not None and matches(if_none_match.decode("latin-1"), etag):
            return not_modified
        return ok

    # A hot course is parsed and hashed once, not per read. The answers are keyed by the
    # bytes themselves, so an edited course (other bytes) gets its own entry.
    courses: Recent[str, tuple[uuid.UUID, str]] = Recent()
    answers: Recent[bytes, tuple[str, Answer, Answer]] = Recent()
    return FastRoutes(prefixes=[(_PREFIX, "/courses/{course_id}", course_detail)])


def _answers(body: bytes, max_age: int) -> tuple[str, Answer, Answer]:
    """The ETag of `body`, its 200 and its 304, as the handler would answer them."""
    headers = validators(body, max_age=max_age, public=True)
    listed = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    ok = Answer(200, [*listed, _JSON, (b"content-length", str(len(body)).encode())], body)
    return headers["ETag"], ok, Answer(304, listed, b"")


def _viewer(request: FastRequest, resources: Resources) -> uuid.UUID | None:
    """As the handler's: a signed-in caller, or anonymous (a bad token too)."""
    header = request.headers.get(b"authorization")
    if header is None:
        return None
    try:
        return resources.tokens.principal_of_header(header.decode("latin-1")).user_id
    except ServiceError:
        return None
