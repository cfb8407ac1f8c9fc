"""Cacheable JSON responses: ETag, Cache-Control and 304 on a matching If-None-Match."""

from typing import Any

from litestar import MediaType, Request, Response

from services.course.content_cache import etag_of

__all__ = ["cacheable", "matches", "validators"]


def cacheable(
    request: Request[Any, Any, Any], body: bytes, *, max_age: int, public: bool
) -> Response[bytes]:
    """`body` with validators; 304 without a body when the client already holds it.

    Public catalogue responses may be cached by the CDN for `max_age`; content that needs a
    token is `private`, so only the caller's own browser keeps it.
    """
    headers = validators(body, max_age=max_age, public=public)
    if matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=MediaType.JSON, headers=headers)


def validators(body: bytes, *, max_age: int, public: bool) -> dict[str, str]:
    """The ETag, Cache-Control and Vary headers of `body` (also the fast lane's)."""
    scope = "public" if public else "private"
    return {"ETag": etag_of(body), "Cache-Control": f"{scope}, max-age={max_age}", "Vary": "Accept"}


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` value names `etag` (or `*`)."""
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
