import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdf_factory import (
    KNOWN_SENTENCES,
    blank_pdf,
    corrupt_pdf,
    encrypted_pdf,
    known_sentences,
    text_pdf,
)

from services.indexing import pdf
from services.indexing.pdf import (
    CorruptDocument,
    EncryptedDocument,
    NoTextDocument,
    UnreadableDocument,
    is_pdf,
    read_pages,
)

HTML = b"<!DOCTYPE html><html><head><title>Lecture 1</title></head><body>Not found</body></html>"


def raw_pdf(*contents: tuple[bytes, bytes]) -> bytes:
    """A hand-built PDF with one page per (stream dictionary entries, stream data)."""
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for entries, data in contents:
        page, stream = len(objects) + 1, len(objects) + 2
        kids.append(b"%d 0 R" % page)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R"
            b" /Resources << /Font << /F1 %s >> >> >>" % (stream, font)
        )
        objects.append(b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), entries, data))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    return assemble(objects)


def assemble(objects: list[bytes]) -> bytes:
    """Numbered objects (1, 2, ...), a cross-reference table and a trailer rooted at 1."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def text_stream(text: bytes) -> tuple[bytes, bytes]:
    return b"", b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text


# --- reading ---------------------------------------------------------------------------


def test_pages_come_back_in_order_with_their_sentences():
    pages = [" ".join(known_sentences(3, start=3 * i)) for i in range(3)]
    texts = read_pages(text_pdf(pages))
    assert len(texts) == 3
    for i, text in enumerate(texts):
        for sentence in known_sentences(3, start=3 * i):
            assert sentence in text
        for sentence in set(KNOWN_SENTENCES) - set(known_sentences(3, start=3 * i)):
            assert sentence not in text


def test_a_long_wrapped_page_comes_back_whole_with_whitespace_collapsed():
    page = " ".join(known_sentences(60))  # ~75 lines once wrapped
    (text,) = read_pages(text_pdf([page]))
    assert text == page
    assert "\n" not in text
    assert "  " not in text


def test_a_page_without_text_is_kept_empty_so_page_numbers_stay_right():
    texts = read_pages(text_pdf([KNOWN_SENTENCES[0], "", KNOWN_SENTENCES[1]]))
    assert texts == [KNOWN_SENTENCES[0], "", KNOWN_SENTENCES[1]]


def test_leading_junk_before_the_signature_is_skipped_as_viewers_do():
    data = b"X" * 1000 + text_pdf([KNOWN_SENTENCES[2]])
    assert read_pages(data) == [KNOWN_SENTENCES[2]]


def test_text_is_cleaned_of_control_characters_and_lone_surrogates():
    assert pdf._normalise("a\x00b\ud800c \t\r\n d\x7f\x0c") == "a b c d"


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RC4-40", "RC4-128", "AES-128", "AES-256"])
def test_a_pdf_that_needs_a_password_is_encrypted(algorithm):
    with pytest.raises(EncryptedDocument) as caught:
        read_pages(encrypted_pdf([KNOWN_SENTENCES[0]], "secret", algorithm=algorithm))
    assert caught.value.reason == "the PDF is encrypted (it needs a password to open)"


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_a_pdf_encrypted_with_an_empty_user_password_is_read(algorithm):
    data = encrypted_pdf([KNOWN_SENTENCES[0], KNOWN_SENTENCES[1]], "", algorithm=algorithm)
    assert read_pages(data) == [KNOWN_SENTENCES[0], KNOWN_SENTENCES[1]]


def test_a_truncated_pdf_is_corrupt():
    with pytest.raises(CorruptDocument) as caught:
        read_pages(corrupt_pdf())
    assert caught.value.reason.startswith("the file is not a readable PDF: it is damaged")


def test_pages_without_any_text_have_no_text():
    with pytest.raises(NoTextDocument) as caught:
        read_pages(blank_pdf(3))
    assert caught.value.reason == "the PDF has no extractable text (scanned images?)"


def test_a_pdf_without_pages_has_no_text():
    with pytest.raises(NoTextDocument):
        read_pages(blank_pdf(0))


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "it is empty"),
        (HTML, "it does not start with the PDF signature (%PDF-)"),
        (b"PK\x03\x04" + b"\x00" * 2000 + b"%PDF-1.7", "it does not start with the PDF signature"),
    ],
    ids=["empty", "html", "signature-too-late"],
)
def test_what_is_not_a_pdf_is_refused_before_parsing(data, detail):
    with pytest.raises(CorruptDocument) as caught:
        read_pages(data)
    assert caught.value.reason.startswith(f"the file is not a readable PDF: {detail}")


def test_more_pages_than_allowed_is_unreadable_with_the_counts():
    with pytest.raises(UnreadableDocument) as caught:
        read_pages(text_pdf(known_sentences(3)), max_pages=2)
    assert type(caught.value) is UnreadableDocument
    assert caught.value.reason == "the PDF has 3 pages, more than the 2 that can be indexed"
    assert read_pages(text_pdf(known_sentences(2)), max_pages=2) == known_sentences(2)


def test_max_pages_must_be_positive():
    with pytest.raises(ValueError, match="max_pages must be at least 1"):
        read_pages(text_pdf(["x"]), max_pages=0)


def test_every_error_is_an_unreadable_document_with_its_reason_as_message():
    for error in (EncryptedDocument(), CorruptDocument("it is odd"), NoTextDocument()):
        assert isinstance(error, UnreadableDocument)
        assert str(error) == error.reason
    assert CorruptDocument("it is odd").detail == "it is odd"


# --- hostile and odd files -----------------------------------------------------------


def test_one_unreadable_page_is_empty_and_the_rest_is_read():
    data = raw_pdf(text_stream(b"First page"), (b"/Filter /NoSuchFilter", b"junk"))
    assert read_pages(data) == ["First page", ""]


def test_when_no_page_can_be_read_the_first_failure_is_the_reason():
    data = raw_pdf((b"/Filter /NoSuchFilter", b"junk"))
    with pytest.raises(CorruptDocument, match="Unsupported filter /NoSuchFilter"):
        read_pages(data)


def test_a_decompression_bomb_is_stopped_at_the_stream_limit_quickly():
    bomb = zlib.compress(b" " * (pdf._MAX_STREAM_BYTES + 1), 9)  # ~9 kB on disk
    data = raw_pdf(text_stream(b"Harmless"), (b"/Filter /FlateDecode", bomb))
    started = time.monotonic()
    with pytest.raises(UnreadableDocument) as caught:
        read_pages(data)
    assert time.monotonic() - started < 5
    assert caught.value.reason.startswith("the PDF is too large or complex to read safely")


def test_the_page_content_of_a_whole_document_is_budgeted(monkeypatch):
    monkeypatch.setattr(pdf, "_MAX_CONTENT_BYTES", 120)
    data = raw_pdf(*(text_stream(b"A page of 55 bytes of content") for _ in range(5)))
    with pytest.raises(UnreadableDocument, match=r"page content \(reached on page 3\)"):
        read_pages(data)


def test_the_text_of_a_whole_document_is_budgeted(monkeypatch):
    monkeypatch.setattr(pdf, "_MAX_TEXT_CHARS", 25)
    data = raw_pdf(*(text_stream(b"Ten chars.") for _ in range(5)))
    with pytest.raises(UnreadableDocument, match=r"characters of text \(reached on page 3\)"):
        read_pages(data)


@pytest.mark.parametrize(
    "objects",
    [
        # a page tree whose only kid is itself
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"],
        # a page whose content is ten thousand nested arrays
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 4 0 R >>",
            b"<< /Length 20000 >>\nstream\n" + b"[" * 10_000 + b"]" * 10_000 + b"\nendstream",
        ],
        # a catalogue that is a number, and pages that are a string
        [b"42", b"(pages)"],
    ],
    ids=["page-tree-loop", "deep-nesting", "wrong-types"],
)
def test_malicious_structures_are_unreadable_not_crashes(objects):
    with pytest.raises(UnreadableDocument):
        read_pages(assemble(objects))


_MUTATIONS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=100_000),
        st.sampled_from([b"", b"<<", b">>", b"[", b"]", b" 0 R", b"-1", b"999999999", b"(", b"\\"]),
        st.integers(min_value=0, max_value=40),
    ),
    min_size=1,
    max_size=8,
)
_SAMPLES = (
    text_pdf(known_sentences(3)),
    encrypted_pdf(known_sentences(2), "", algorithm="RC4-128"),
    raw_pdf(text_stream(b"Hand-made page")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(_SAMPLES), mutations=_MUTATIONS)
def test_a_damaged_pdf_is_read_or_refused_never_anything_else(sample, mutations):
    data = bytearray(sample)
    for position, insert, deleted in mutations:
        at = position % len(data)
        data[at : at + deleted] = insert
    outcome: list[str] | UnreadableDocument
    try:
        outcome = read_pages(bytes(data))
    except UnreadableDocument as error:
        outcome = error
    if isinstance(outcome, UnreadableDocument):
        assert outcome.reason
    else:
        assert all(isinstance(text, str) for text in outcome)


# --- sniffing ------------------------------------------------------------------------


def test_a_pdf_is_recognised_by_its_signature():
    assert is_pdf(text_pdf(["x"])[:1024])
    assert is_pdf(b"%PDF-1.4")


def test_a_signature_after_leading_junk_within_1024_bytes_counts():
    assert is_pdf(b"\r\n" * 500 + b"%PDF-1.7\n")  # starts at byte 1000, ends by 1024
    assert not is_pdf(b" " * 1020 + b"%PDF-1.7\n")  # crosses the 1024th byte
    assert not is_pdf(b" " * 2000 + b"%PDF-1.7\n")


def test_an_html_page_named_pdf_is_not_a_pdf(tmp_path):
    upload = tmp_path / "lecture-notes.pdf"
    upload.write_bytes(HTML)
    assert not is_pdf(upload.read_bytes()[:1024])
    assert not is_pdf(b"")
