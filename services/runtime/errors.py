"""One error shape for every service: RFC 9457 `application/problem+json`.

The tree (raise these from handlers and repositories; the handlers below render them)::

    ServiceError                500  something we did not expect
    ├── ClientError             400  the request is wrong
    │   ├── InvalidInput        422  a field is wrong; `errors` names each one
    │   ├── Unauthorized        401  no token, or a bad or expired one
    │   ├── Forbidden           403  the caller may not do this
    │   ├── NotFound            404
    │   ├── Conflict            409
    │   ├── TooLarge            413  the body is over a limit
    │   ├── UnsupportedMedia    415  the content is not of an accepted type
    │   └── TooManyRequests     429  with Retry-After
    └── Unavailable             503  a dependency is down; with Retry-After

Framework errors (routing 404/405, 413, malformed JSON, validation) and driver errors
(PostgreSQL or Redis unreachable; a value PostgreSQL cannot store, such as text with NUL,
is a 422) are mapped onto the same shape, so a client parses one format whatever failed,
and nothing a client sends can produce a 500.
"""

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
import psycopg
import psycopg_pool
import redis.exceptions
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

__all__ = [
    "ClientError",
    "Conflict",
    "FieldError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "ServiceError",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMedia",
    "exception_handlers",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_log = structlog.get_logger("eduscale.errors")


class FieldError(msgspec.Struct, frozen=True):
    """One wrong field of a request: where it is and what is wrong with it."""

    field: str
    message: str


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})

    def extensions(self) -> dict[str, Any]:
        """Members added to the problem document beside type, title, status and detail."""
        return {}


class ClientError(ServiceError):
    """The request cannot be served as sent."""

    status = 400
    title = "Bad request"


class InvalidInput(ClientError):
    """One or more fields are wrong."""

    status = 422
    title = "Invalid input"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        names = ", ".join(error.field for error in errors)
        super().__init__(detail or f"Invalid value for {names}")
        self.errors = errors

    def extensions(self) -> dict[str, Any]:
        """The wrong fields, each with what is wrong."""
        return {"errors": [msgspec.to_builtins(error) for error in self.errors]}


class Unauthorized(ClientError):
    """No valid credentials."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="eduscale"'})


class Forbidden(ClientError):
    """Valid credentials, not enough rights."""

    status = 403
    title = "Forbidden"


class NotFound(ClientError):
    """No such object (or one the caller may not know exists)."""

    status = 404
    title = "Not found"


class Conflict(ClientError):
    """The request clashes with the current state, e.g. a duplicate email."""

    status = 409
    title = "Conflict"


class TooLarge(ClientError):
    """The body (or an uploaded file) is larger than allowed."""

    status = 413
    title = "Content too large"


class UnsupportedMedia(ClientError):
    """The content is not of a type this endpoint accepts."""

    status = 415
    title = "Unsupported media type"


class TooManyRequests(ClientError):
    """Throttled; retry after the given number of seconds."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class Unavailable(ServiceError):
    """A dependency is down; the request may succeed later."""

    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


def problem_response(
    request: Request[Any, Any, Any],
    *,
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    """Render one problem document; `instance` is the request path, `request_id` joins logs."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extensions or {})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _service_error(request: Request[Any, Any, Any], exc: ServiceError) -> Response[dict[str, Any]]:
    if exc.status >= 500:  # noqa: PLR2004 - 5xx are ours to look at
        _log.warning("service_error", status=exc.status, detail=exc.detail)
    return problem_response(
        request,
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extensions=exc.extensions(),
    )


def _validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    errors = [_field_error(item) for item in exc.extra or []] if isinstance(exc.extra, list) else []
    if not errors:  # the body is not JSON at all, or cut short
        return problem_response(request, status=400, title="Malformed request", detail=exc.detail)
    return _service_error(request, InvalidInput(errors))


def _field_error(item: Any) -> FieldError:
    message = str(item.get("message", "invalid")) if isinstance(item, dict) else str(item)
    key = str(item.get("key", "body")) if isinstance(item, dict) else "body"
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        key = unknown.group(1)
    elif key == "data":
        key = "body"
    return FieldError(field=key, message=message)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    return problem_response(
        request,
        status=exc.status_code,
        title=_reason(exc.status_code),
        detail=exc.detail,
        headers=exc.headers,
    )


def _dependency_down(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.warning("dependency_unavailable", error=type(exc).__name__)
    return _service_error(request, Unavailable("A backing service is unavailable; retry shortly"))


def _unstorable_value(
    request: Request[Any, Any, Any], exc: psycopg.DataError
) -> Response[dict[str, Any]]:
    # A value passed validation but PostgreSQL cannot hold it: text with NUL (U+0000).
    _log.warning("unstorable_value", error=type(exc).__name__, sqlstate=exc.sqlstate)
    return problem_response(
        request,
        status=InvalidInput.status,
        title=InvalidInput.title,
        detail="The request contains a value that cannot be stored "
        "(for example text with a NUL character)",
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.exception("unhandled_error", exc_info=exc)
    return _service_error(request, ServiceError("An unexpected error occurred"))


def _reason(status: int) -> str:
    from http import HTTPStatus  # noqa: PLC0415 - only on the error path

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def exception_handlers() -> ExceptionHandlersMap:
    """The app-level handlers: the only place an exception becomes a response."""
    return {
        ServiceError: _service_error,
        ValidationException: _validation_error,
        HTTPException: _http_error,
        psycopg.OperationalError: _dependency_down,
        psycopg.DataError: _unstorable_value,
        psycopg_pool.PoolTimeout: _dependency_down,
        redis.exceptions.ConnectionError: _dependency_down,
        redis.exceptions.TimeoutError: _dependency_down,
        Exception: _unexpected,
    }
