"""Real PDFs for tests: pages of known text, encrypted, blank and corrupt ones.

The text PDFs are laid out by fpdf2 with a core font, as a word processor would make
them (compressed content streams, one text line per wrapped line), so the indexer reads
them exactly as it reads an upload. Core fonts cover Latin-1 only: keep test texts in it.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from io import BytesIO
from typing import Literal

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

__all__ = [
    "KNOWN_SENTENCES",
    "blank_pdf",
    "corrupt_pdf",
    "encrypted_pdf",
    "known_sentences",
    "text_pdf",
]

KNOWN_SENTENCES = (
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
    "The Pythagorean theorem relates the squares of the three sides of a right triangle.",
    "The storming of the Bastille in July 1789 opened the French Revolution.",
    "Mitochondria release most of the chemical energy that powers a living cell.",
    "A binary search halves the remaining interval of a sorted list at every step.",
    "Shakespeare wrote the tragedy of Hamlet, Prince of Denmark, around the year 1600.",
    "At sea level, pure water boils at one hundred degrees Celsius.",
    "Supply and demand together set the price of a good in a competitive market.",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
    "Plate tectonics explains earthquakes, volcanoes and the drift of the continents.",
)
"""Distinct facts on distinct subjects, each easy to search for."""

_FIXED_DATE = datetime(2024, 1, 1, tzinfo=UTC)  # the same text gives the same bytes
_A4_WIDTH, _A4_HEIGHT = 595.28, 841.89  # points
_Algorithm = Literal["RC4-40", "RC4-128", "AES-128", "AES-256-R5", "AES-256"]


def known_sentences(count: int, *, start: int = 0) -> list[str]:
    """`count` of the known sentences from `start` on, wrapping round past the last."""
    return [KNOWN_SENTENCES[(start + i) % len(KNOWN_SENTENCES)] for i in range(count)]


def text_pdf(pages: Sequence[str]) -> bytes:
    """An A4 PDF with one page per text, each wrapped into lines (an empty text: no text).

    A text too long for one page runs on past its bottom edge rather than onto a new
    page, so page numbers stay those of `pages`; PDF readers still extract it.
    """
    pdf = _document()
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(w=0, h=5, text=text, align="L")
    return bytes(pdf.output())


def encrypted_pdf(
    pages: Sequence[str],
    password: str = "secret",  # noqa: S107 - a test document's password
    *,
    algorithm: _Algorithm = "AES-256",
) -> bytes:
    """`text_pdf(pages)` encrypted with the user password `password`.

    With `password=""` it opens without one, like the many PDFs "protected" only by an
    owner password that restricts printing or copying.
    """
    writer = PdfWriter(clone_from=PdfReader(BytesIO(text_pdf(pages))))
    writer.encrypt(user_password=password, owner_password="the-owner", algorithm=algorithm)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def blank_pdf(page_count: int) -> bytes:
    """A valid A4 PDF of `page_count` pages without text (0: a PDF with no page at all)."""
    writer = PdfWriter()
    for _ in range(page_count):
        writer.add_blank_page(width=_A4_WIDTH, height=_A4_HEIGHT)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """A file that starts like a PDF but breaks off a third of the way through."""
    whole = text_pdf(known_sentences(3))
    return whole[: len(whole) // 3]


def _document() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(_FIXED_DATE)
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=11)
    return pdf
