"""Where uploaded PDFs are kept: the stack's S3 bucket, or a local directory.

The orchestrator writes a file before it queues the indexing job and the indexer reads it,
so both see the same store: `DOCUMENTS_BUCKET` (the DocumentStore component's bucket,
reached with the pod's IRSA role; encryption, versioning and lifecycle are the bucket's)
or, unset, `DOCUMENTS_DIR` on this machine. Keys are built here from ids only, so no
client-supplied name ever reaches a path or an object key.
"""

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread

from services.ai.settings import AISettings

__all__ = ["DocumentFiles", "LocalFiles", "S3Files", "document_files", "storage_key"]

_PREFIX = "documents"


def storage_key(course_id: uuid.UUID, document_id: uuid.UUID) -> str:
    """`documents/<course>/<document>.pdf`: the IAM policies grant exactly this prefix."""
    return f"{_PREFIX}/{course_id}/{document_id}.pdf"


class DocumentFiles(Protocol):
    """A store of whole files by key."""

    async def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there."""

    async def get(self, key: str) -> bytes:
        """The file under `key`; `FileNotFoundError` if there is none."""

    async def delete(self, key: str) -> None:
        """Remove `key`; no error if it is already gone."""


class LocalFiles:
    """Files under a directory, written atomically (a reader never sees half a file)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} leaves the documents directory")
        return path

    async def put(self, key: str, data: bytes) -> None:
        """As `DocumentFiles.put`."""
        await anyio.to_thread.run_sync(self._put, key, data)

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            Path(temporary).replace(path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        """As `DocumentFiles.get`."""
        return await anyio.to_thread.run_sync(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        """As `DocumentFiles.delete`."""
        await anyio.to_thread.run_sync(lambda: self._path(key).unlink(missing_ok=True))


class S3Files:
    """Objects in the documents bucket (boto3, run in a worker thread)."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        if client is None:
            import boto3  # noqa: PLC0415 - only pods with a bucket pay for boto3's import

            client = boto3.client("s3")
        self.bucket = bucket
        self._s3 = client

    async def put(self, key: str, data: bytes) -> None:
        """As `DocumentFiles.put`."""
        await anyio.to_thread.run_sync(
            lambda: self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/pdf"
            )
        )

    async def get(self, key: str) -> bytes:
        """As `DocumentFiles.get`.

        S3 says NoSuchKey only to a role that may list the bucket (else AccessDenied), which
        is why the readers' roles may list the documents prefix (`stacks/access.py`).
        """

        def read() -> bytes:
            try:
                body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            except self._s3.exceptions.NoSuchKey:
                raise FileNotFoundError(f"s3://{self.bucket}/{key}") from None
            return bytes(body.read())

        return await anyio.to_thread.run_sync(read)

    async def delete(self, key: str) -> None:
        """As `DocumentFiles.delete`."""
        await anyio.to_thread.run_sync(lambda: self._s3.delete_object(Bucket=self.bucket, Key=key))


def document_files(settings: AISettings) -> DocumentFiles:
    """The store `settings` name."""
    if settings.documents_bucket:
        return S3Files(settings.documents_bucket)
    return LocalFiles(Path(settings.documents_dir))
