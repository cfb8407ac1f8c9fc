"""Cacheable JSON responses: ETag, Cache-Control and 304 on a matching If-None-Match."""

from typing import Any

from litestar import MediaType, Request, Response

from services.course.content_cache import etag_of

__all__ = ["cacheable"]


def cacheable(
    request: Request[Any, Any, Any], body: bytes, *, max_age: int, public: bool
) -> Response[bytes]:
    """`body` with validators; 304 without a body when the client already holds it.

    Public catalogue responses may be cached by the CDN for `max_age`; content that needs a
    token is `private`, so only the caller's own browser keeps it.
    """
    etag = etag_of(body)
    scope = "public" if public else "private"
    headers = {"ETag": etag, "Cache-Control": f"{scope}, max-age={max_age}", "Vary": "Accept"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=MediaType.JSON, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
