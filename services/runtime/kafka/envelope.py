"""Versioned message values: msgspec structs tagged with a `schema_version`.

A consumer decodes exactly the versions it knows; anything else (not JSON, wrong shape,
unknown version) is a `PoisonMessage`, which goes straight to the dead-letter topic
rather than being retried forever.
"""

import uuid
from typing import Literal, TypeVar

import msgspec

__all__ = [
    "DocumentUploaded",
    "GenerationRequested",
    "PoisonMessage",
    "decode_document",
    "decode_generation",
    "encode",
]


_M = TypeVar("_M", bound=msgspec.Struct)


class PoisonMessage(ValueError):
    """A value no retry can make processable."""


class GenerationRequested(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`generation.requested` v1: do the generation job `job_id` (details are on the job row)."""

    schema_version: Literal[1] = 1
    job_id: uuid.UUID


class DocumentUploaded(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`document.uploaded` v1: index `document_id` as job `job_id` (the file is in storage).

    `sha256` names the upload: a message for an upload that was since replaced is skipped.
    """

    schema_version: Literal[1] = 1
    job_id: uuid.UUID
    document_id: uuid.UUID
    sha256: str


def encode(message: msgspec.Struct) -> bytes:
    """The wire bytes of a message."""
    return msgspec.json.encode(message)


def decode_generation(value: bytes | None) -> GenerationRequested:
    """Decode a `generation.requested` value, or raise `PoisonMessage` saying why not."""
    return _decode(value, GenerationRequested, "generation.requested")


def decode_document(value: bytes | None) -> DocumentUploaded:
    """Decode a `document.uploaded` value, or raise `PoisonMessage` saying why not."""
    return _decode(value, DocumentUploaded, "document.uploaded")


def _decode(value: bytes | None, kind: type[_M], topic: str) -> _M:
    if not value:
        raise PoisonMessage("empty message value")
    try:
        version = msgspec.json.decode(value, type=dict[str, object]).get("schema_version")
    except msgspec.DecodeError as error:
        raise PoisonMessage(f"not JSON: {error}") from None
    if version != 1:
        raise PoisonMessage(f"unknown schema_version {version!r}; this consumer reads 1")
    try:
        return msgspec.json.decode(value, type=kind)
    except msgspec.ValidationError as error:
        raise PoisonMessage(f"invalid {topic} v1: {error}") from None
