"""HTTP handlers for course documents and course-scoped search.

Uploads are multipart (`course_id`, `file`). The file is checked by content (the PDF
signature), never by name or declared type; it is read in pieces while its size is
counted, so an oversized upload is refused without holding more than the limit. The
handlers are built per app (`document_controller`), because the body limit of the upload
route comes from the settings.
"""

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter

from services.ai.breaker import is_provider_failure
from services.ai.document_files import storage_key
from services.ai.documents import (
    Document,
    Upload,
    course_owner,
    delete_document,
    detach_document,
    document_id_for,
    load_document,
    queue_upload,
)
from services.ai.provider_breakers import EMBEDDINGS_BREAKER
from services.ai_orchestrator.runtime import AIRuntime
from services.ai_orchestrator.status import provider_paused_for
from services.indexing.pdf import is_pdf
from services.runtime.errors import (
    FieldError,
    InvalidInput,
    NotFound,
    TooLarge,
    Unavailable,
    UnsupportedMedia,
)
from services.runtime.resources import Resources
from services.runtime.tokens import Principal

__all__ = ["DocumentAccepted", "SearchResults", "document_controller"]

_READ_SIZE = 1024 * 1024
_SNIFF_BYTES = 1024
_MULTIPART_OVERHEAD = 64 * 1024
_MAX_FILENAME = 200


@dataclass
class DocumentForm:
    """The multipart upload."""

    course_id: uuid.UUID
    file: UploadFile


class DocumentAccepted(msgspec.Struct, kw_only=True):
    """The upload is stored and queued for indexing."""

    document_id: uuid.UUID
    job_id: uuid.UUID
    status: str


class SearchResult(msgspec.Struct, kw_only=True):
    """One matching chunk of a course document."""

    document_id: str
    page: int
    chunk_index: int
    text: str
    score: float


class SearchResults(msgspec.Struct, kw_only=True):
    """The best chunks of one course for a query, best first."""

    course_id: uuid.UUID
    query: str
    results: list[SearchResult]


def _filename(raw: str | None) -> str:
    # Only the last path component of what the browser sent, for display and replacement.
    name = PureWindowsPath(PurePosixPath(raw or "").name).name.strip()
    return (name or "document.pdf")[:_MAX_FILENAME]


async def _read_checked(file: UploadFile, max_bytes: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await file.read(_READ_SIZE):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"The file is larger than the limit of {max_bytes} bytes")
        parts.append(chunk)
    data = b"".join(parts)
    if not data:
        raise InvalidInput([FieldError(field="file", message="the file is empty")])
    if not is_pdf(data[:_SNIFF_BYTES]):
        raise UnsupportedMedia("Only PDF files are accepted (the content is not a PDF)")
    return data


def document_controller(max_bytes: int) -> type[Controller]:
    """The documents and search handlers, with uploads limited to `max_bytes`."""

    class DocumentController(Controller):
        """Course documents: upload, status, removal; and search over them."""

        path = "/ai"
        tags = ["documents"]  # noqa: RUF012 - Litestar reads this class attribute

        @post(
            "/documents",
            operation_id="upload_document",
            summary="Upload a course PDF to be indexed for search and grounding",
            status_code=202,
            request_max_body_size=max_bytes + _MULTIPART_OVERHEAD,
        )
        async def upload(
            self,
            data: Annotated[DocumentForm, Body(media_type=RequestEncodingType.MULTI_PART)],
            principal: NamedDependency[Principal],
            resources: NamedDependency[Resources],
            ai: NamedDependency[AIRuntime],
        ) -> DocumentAccepted:
            """202 once the file is stored and its indexing queued; same name replaces."""
            async with resources.databases.writer() as conn:
                await course_owner(conn, data.course_id, principal)
            content = await _read_checked(data.file, max_bytes)
            upload = Upload(
                course_id=data.course_id,
                filename=_filename(data.file.filename),
                size_bytes=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
            )
            async with resources.databases.writer() as conn:
                document_id = await document_id_for(conn, upload)
                key = storage_key(upload.course_id, document_id)
                await ai.files.put(key, content)
                document = await queue_upload(conn, principal, upload, document_id, key)
            return DocumentAccepted(
                document_id=document.document_id, job_id=document.job_id, status=document.status
            )

        @get(
            "/documents/{document_id:uuid}",
            operation_id="get_document",
            summary="A document's indexing status, progress and chunk count",
        )
        async def document(
            self,
            document_id: FromPath[uuid.UUID],
            principal: NamedDependency[Principal],
            resources: NamedDependency[Resources],
        ) -> Document:
            """For the course's instructor (or the uploader)."""
            async with resources.databases.writer() as conn:
                found, _ = await load_document(conn, document_id, principal)
            return found

        @delete(
            "/documents/{document_id:uuid}",
            operation_id="delete_document",
            summary="Remove a document, its file and its search chunks",
        )
        async def remove(
            self,
            document_id: FromPath[uuid.UUID],
            principal: NamedDependency[Principal],
            resources: NamedDependency[Resources],
            ai: NamedDependency[AIRuntime],
        ) -> None:
            """Detach the row from its job (committed), then vectors, file, and the row last.

            An indexer may be writing the document's chunks meanwhile. Removing the vectors
            while the row still names its job would let it finish afterwards, mark the
            document indexed and leave its chunks behind once the row is gone; detaching
            first makes it see the document as gone and remove what it wrote. The row goes
            last, so if removing the vectors or the file fails, it is still there (saying
            so) and `DELETE` can be repeated: nothing is left that no request can reach.
            """
            async with resources.databases.writer() as conn:
                found, key = await load_document(conn, document_id, principal)
                await course_owner(conn, found.course_id, principal)
                detached = await detach_document(conn, document_id)
            await ai.index.delete_document(str(document_id))
            await ai.files.delete(key)
            async with resources.databases.writer() as conn:
                await delete_document(conn, document_id, detached)

        @get(
            "/search",
            operation_id="search_course",
            summary="Search a course's documents by meaning",
        )
        async def search(  # noqa: PLR0917 - Litestar injects these by name
            self,
            principal: NamedDependency[Principal],  # noqa: ARG002 - signed-in users only
            resources: NamedDependency[Resources],
            ai: NamedDependency[AIRuntime],
            course_id: Annotated[uuid.UUID, QueryParameter()],
            q: Annotated[str, QueryParameter(min_length=1, max_length=1000)],
            limit: Annotated[int, QueryParameter(ge=1, le=50)] = 5,
        ) -> SearchResults:
            """Chunks of this course only, ranked by similarity to `q`."""
            async with resources.databases.reader() as conn:
                cursor = await conn.execute("SELECT 1 FROM courses WHERE id = %s", (course_id,))
                if await cursor.fetchone() is None:
                    raise NotFound(f"No course {course_id}")
            if ai.embedder is None:
                raise Unavailable("Search needs the AI provider (OPENAI_API_KEY)", retry_after=60)
            paused = await provider_paused_for(resources.redis, EMBEDDINGS_BREAKER)
            if paused is not None:  # known down: fail fast rather than add to its load
                raise Unavailable("The AI provider is failing; retry shortly", retry_after=paused)
            try:
                (vector,) = await ai.embedder.embed([q])
            except Exception as error:
                if is_provider_failure(error):
                    raise Unavailable("The AI provider is failing; retry shortly") from error
                raise
            hits = await ai.index.search(course_id=str(course_id), vector=vector, limit=limit)
            return SearchResults(
                course_id=course_id,
                query=q,
                results=[
                    SearchResult(
                        document_id=hit.document_id,
                        page=hit.page,
                        chunk_index=hit.chunk_index,
                        text=hit.text,
                        score=hit.score,
                    )
                    for hit in hits
                ],
            )

    return DocumentController
