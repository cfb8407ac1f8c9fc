"""Reading the text of an uploaded PDF, page by page, without trusting the file.

Errors, all permanent (the same bytes always fail the same way, so the indexer marks the
document failed with `reason` and dead-letters the message instead of retrying):

    UnreadableDocument      too many pages, or over the safety limits below
    ├── EncryptedDocument   a user password is needed to open it
    ├── CorruptDocument     not a PDF, empty, truncated or garbled
    └── NoTextDocument      no page has any text (a scan without OCR, say)

Encryption: a PDF encrypted with an *empty* user password (an owner password only, to
restrict printing or copying) opens in every viewer without a prompt, so it is read like
any other; its permission flags are advisory and the uploader is the course's instructor.
Only a PDF that needs a password to open is an `EncryptedDocument`.

Hostile input. The parser is pypdf, pure Python, so a malicious file can cost time and
memory but cannot corrupt memory. pypdf bounds each stream's decompressed size, the work
per stream, the page tree, arrays, dictionaries and form invocations per page
(`pypdf.Configuration`); `read_pages` tightens the decompression limits from 75 MB to
`_MAX_STREAM_BYTES` per stream (a page of text is a few kB) through
`pypdf.apply_configuration`, a context variable, so it is safe under threads and asyncio
and changes nothing for other callers. Those limits are per stream, and a small file can
hold many bombs: a file under half a megabyte with three 70 MB pages of text took pypdf
90 s and 1.2 GB with its defaults. So the document as a whole gets budgets too: at most
`_MAX_CONTENT_BYTES` of decoded page content and `_MAX_TEXT_CHARS` of text. Reaching any
limit is an `UnreadableDocument`. pypdf parses dense text operators at about 0.5 MB/s
(measured here), so a hostile file can still cost about 15 s a page and a few minutes in
all; a worker that must bound that tighter runs `read_pages` in a child process with a
timeout.
"""

import re
from io import BytesIO
from typing import Any

from pypdf import PasswordType, PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

__all__ = [
    "CorruptDocument",
    "EncryptedDocument",
    "NoTextDocument",
    "UnreadableDocument",
    "is_pdf",
    "read_pages",
]

PDF_SIGNATURE = b"%PDF-"
"""The header every PDF starts with, possibly after some junk."""

SNIFF_BYTES = 1024
"""Where the signature must lie: viewers accept junk before it, within the first 1024 bytes.

(Adobe's PDF Reference 1.7, implementation notes to section 3.4.1, "File Header".)
"""

_MAX_STREAM_BYTES = 8 * 1024 * 1024
"""Decompressed bytes allowed per stream (pypdf's default: 75 MB)."""

_MAX_CONTENT_BYTES = 128 * 1024 * 1024
"""Decoded page content allowed for the whole document: ~64 kB for each of 2,000 pages."""

_MAX_TEXT_CHARS = 16_000_000
"""Extracted text allowed for the whole document: ~8,000 characters for 2,000 pages."""

_LIMITS: dict[str, Any] = {
    "array_based_stream_maximum_output_length": _MAX_STREAM_BYTES,
    "jbig2_maximum_output_length": _MAX_STREAM_BYTES,
    "lzw_maximum_output_length": _MAX_STREAM_BYTES,
    "run_length_maximum_output_length": _MAX_STREAM_BYTES,
    "zlib_maximum_output_length": _MAX_STREAM_BYTES,
    "brotli_maximum_output_length": _MAX_STREAM_BYTES,
    "stream_decoding_work_maximum_length": 4 * _MAX_STREAM_BYTES,
}

_GARBAGE_ERRORS: tuple[type[Exception], ...] = (
    PyPdfError,
    # What pypdf lets escape on garbage instead of a PdfReadError: bad numbers and
    # encodings (ValueError, UnicodeError), missing keys and short arrays (LookupError),
    # an object of the wrong type (TypeError, AttributeError), zero-size matrices
    # (ArithmeticError), unknown filters (NotImplementedError) and reference cycles or
    # deep nesting (RecursionError), both RuntimeErrors.
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    ArithmeticError,
    RuntimeError,
    AssertionError,
    OSError,  # the zlib/struct errors of a damaged stream
)

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ud800-\udfff]")
"""Control characters and lone surrogates, which PostgreSQL and JSON refuse."""

_DETAIL_CHARS = 160


class UnreadableDocument(Exception):
    """A document that can never be indexed; `reason` says why, for its uploader."""

    reason: str
    """A short sentence for the user, e.g. "the PDF is encrypted"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncryptedDocument(UnreadableDocument):
    """The PDF needs a password to open."""

    def __init__(self) -> None:
        super().__init__("the PDF is encrypted (it needs a password to open)")


class CorruptDocument(UnreadableDocument):
    """The file is not a PDF, or one too damaged to read."""

    detail: str
    """What is wrong with it, as specific as the parser allows."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the file is not a readable PDF: {detail}")
        self.detail = detail


class NoTextDocument(UnreadableDocument):
    """The PDF opened, but none of its pages has text to extract."""

    def __init__(self) -> None:
        super().__init__("the PDF has no extractable text (scanned images?)")


def is_pdf(head: bytes) -> bool:
    """Whether a file is a PDF, judged by its content: never trust the name or MIME type.

    Args:
        head: the file's first bytes; at least `SNIFF_BYTES` (1024) of them, or all of a
            shorter file. The `%PDF-` signature must lie within them: viewers accept junk
            before it (some mail and web servers prepend some), within the first 1024 bytes.
    """
    return head.find(PDF_SIGNATURE, 0, SNIFF_BYTES) >= 0


def read_pages(data: bytes, *, max_pages: int = 2000) -> list[str]:
    """The text of each page of the PDF `data`, in order, whitespace collapsed.

    A page without text in a document that has some (a figure, a blank page) comes back
    as "", so list positions stay page numbers. A page whose text cannot be extracted
    (a broken font, say) is also "", as long as another page can be read.

    Args:
        data: the whole file.
        max_pages: the most pages a document may have (at least 1).

    Raises:
        EncryptedDocument: it needs a password to open.
        CorruptDocument: it is empty, not a PDF, or too damaged to read.
        NoTextDocument: it has no pages, or none with text.
        UnreadableDocument: it has more than `max_pages` pages or exceeds a safety limit.
        ValueError: `max_pages` is below 1.
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, not {max_pages}")
    if not data:
        raise CorruptDocument("it is empty")
    start = data.find(PDF_SIGNATURE, 0, SNIFF_BYTES)
    if start < 0:
        raise CorruptDocument("it does not start with the PDF signature (%PDF-)")
    # Offsets in a PDF count from its signature, so leading junk is cut off, as viewers do.
    with apply_configuration(**_LIMITS):
        try:
            reader = _open(data[start:])
            count = len(reader.pages)
            if count > max_pages:
                raise UnreadableDocument(
                    f"the PDF has {count} pages, more than the {max_pages} that can be indexed"
                )
            return _texts(reader)
        except LimitReachedError as exc:
            raise UnreadableDocument(
                f"the PDF is too large or complex to read safely ({_limit(exc)})"
            ) from exc
        except (FileNotDecryptedError, DependencyError) as exc:
            # DependencyError: a cipher that pypdf[crypto] cannot decrypt.
            raise EncryptedDocument from exc
        except _GARBAGE_ERRORS as exc:
            raise CorruptDocument(_detail(exc)) from exc


def _open(data: bytes) -> PdfReader:
    reader = PdfReader(BytesIO(data), strict=False)
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise EncryptedDocument
    return reader


def _texts(reader: PdfReader) -> list[str]:
    content_budget = _MAX_CONTENT_BYTES
    text_budget = _MAX_TEXT_CHARS
    texts: list[str] = []
    first_failure: Exception | None = None
    for number, page in enumerate(reader.pages, start=1):
        try:
            contents = page.get_contents()
            content_budget -= 0 if contents is None else len(contents.get_data())
            if content_budget < 0:
                raise UnreadableDocument(
                    f"the PDF holds more than {_MAX_CONTENT_BYTES // 2**20} MiB of page"
                    f" content (reached on page {number}); split it into smaller files"
                )
            text = _normalise(page.extract_text())
        except (LimitReachedError, FileNotDecryptedError, DependencyError):
            raise
        except _GARBAGE_ERRORS as exc:
            first_failure = first_failure or exc
            text = ""
        text_budget -= len(text)
        if text_budget < 0:
            raise UnreadableDocument(
                f"the PDF holds more than {_MAX_TEXT_CHARS:,} characters of text"
                f" (reached on page {number}); split it into smaller files"
            )
        texts.append(text)
    if any(texts):
        return texts
    if first_failure is not None:
        raise first_failure
    raise NoTextDocument


def _normalise(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())


def _detail(exc: BaseException) -> str:
    """What went wrong, with pypdf's own message (they are written for people) if any."""
    readable = isinstance(exc, PyPdfError | NotImplementedError)
    message = " ".join(str(exc).split()) if readable else ""
    if len(message) > _DETAIL_CHARS:
        message = message[: _DETAIL_CHARS - 1] + "…"
    return f"it is damaged or incomplete ({message})" if message else "it is damaged or incomplete"


def _limit(exc: LimitReachedError) -> str:
    message = " ".join(str(exc).split())
    return message[:_DETAIL_CHARS] or "a safety limit was reached"
