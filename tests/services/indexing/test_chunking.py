import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pdf_factory import KNOWN_SENTENCES, known_sentences

from services.indexing.chunking import MIN_MAX_TOKENS, Chunk, chunk_pages, estimate_tokens

# True cl100k_base counts (the tokenizer of text-embedding-3-small), from the token ids in
# jtokkit's reference table lib/src/test/resources/cl100k_base_encodings.csv (generated
# with tiktoken), plus "hello world" from tiktoken's own tests and "tiktoken is great!"
# from OpenAI's cookbook ("How to count tokens with tiktoken").
CL100K_COUNTS = [
    ("hello world", 2),
    ("Hello world!", 3),
    ("tiktoken is great!", 6),
    ("I'm playing with AI models", 6),
    ("The quick brown fox jumps over the lazy dog", 9),
    ("This is a sentence without spaces.", 7),
    ("How about some punctuation?!!", 6),
    ("What about URLs? https://www.google.com", 9),
    ("Can we handle email addresses? user@example.com", 9),
    ("How about numbers? 123 45.6 -78.9", 14),
    (
        (
            "This is a longer text without any special characters or emojis. It includes"
            " spaces, punctuation, and multiple sentences. Let's see how the tokenizer handles it!"
        ),
        31,
    ),
    ("Three swans in purple tutus pirouetting on a tightrope", 15),
    ("The moon is made of cheese and the stars are made of jelly beans", 14),
    ("A giant squid playing the saxophone at the bottom of the ocean", 13),
    ("An army of robot penguins waddling on a glacier in Antarctica", 14),
    ("A wizard in a top hat riding a unicycle while juggling flaming pineapples", 17),
    ("A group of ninja cats practicing their martial arts skills in a bamboo forest", 14),
    ("A friendly alien offering a cup of tea and some cookies to a curious earthling", 16),
    ("Two giraffes in bow ties and monocles having a conversation over tea", 15),
    (
        (
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit. Fusce condimentum enim ac"
            " tellus malesuada, a consectetur nibh efficitur."
        ),
        30,
    ),
]


# --- the token estimate --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "true_count"), CL100K_COUNTS, ids=[t[:24] for t, _ in CL100K_COUNTS]
)
def test_the_estimate_is_within_a_quarter_of_the_true_count(text, true_count):
    assert abs(estimate_tokens(text) - true_count) <= 0.25 * true_count


def test_over_many_sentences_the_estimate_is_within_five_percent():
    estimated = sum(estimate_tokens(text) for text, _ in CL100K_COUNTS)
    true = sum(count for _, count in CL100K_COUNTS)
    assert abs(estimated - true) <= 0.05 * true


def test_whitespace_is_free():
    assert estimate_tokens("") == 0
    assert estimate_tokens(" \n\t ") == 0
    assert estimate_tokens("  hello   world  ") == estimate_tokens("hello world")


@given(st.lists(st.text(min_size=1).map(lambda s: "".join(s.split())).filter(bool), max_size=20))
def test_the_estimate_adds_up_over_words_and_never_exceeds_one_per_character(words):
    text = " ".join(words)
    assert estimate_tokens(text) == sum(estimate_tokens(word) for word in words)
    assert estimate_tokens(text) <= len(text.replace(" ", ""))


# --- chunks --------------------------------------------------------------------------


def lesson(sentences: int, *, start: int = 0) -> str:
    return " ".join(known_sentences(sentences, start=start))


def test_every_word_is_in_a_chunk_of_its_own_page():
    pages = [lesson(40), lesson(25, start=3)]
    chunks = chunk_pages(pages, max_tokens=80, overlap_tokens=20)
    for number, page in enumerate(pages, start=1):
        page_chunks = " ".join(c.text for c in chunks if c.page == number).split()
        assert set(page.split()) <= set(page_chunks)
        assert all(c.text in page for c in chunks if c.page == number)


def test_chunks_respect_max_tokens_and_are_never_empty():
    chunks = chunk_pages([lesson(100)], max_tokens=50, overlap_tokens=10)
    assert len(chunks) > 10
    assert all(0 < estimate_tokens(c.text) <= 50 for c in chunks)
    assert all(c.text.strip() == c.text and c.text for c in chunks)


def test_consecutive_chunks_of_a_page_overlap_by_at_most_the_overlap():
    chunks = chunk_pages([lesson(60)], max_tokens=60, overlap_tokens=20)
    for before, after in itertools.pairwise(chunks):
        shared = overlap(before.text.split(), after.text.split())
        assert shared, (before.text, after.text)
        assert estimate_tokens(" ".join(shared)) <= 20


def test_chunks_end_on_sentences_when_sentences_are_short():
    chunks = chunk_pages([lesson(30)], max_tokens=100, overlap_tokens=30)
    assert all(c.text.endswith(".") for c in chunks)
    # and the overlap is whole sentences: every chunk starts with one
    assert all(c.text.startswith(tuple(KNOWN_SENTENCES)) for c in chunks)


def test_a_sentence_longer_than_a_chunk_is_cut_between_words():
    page = " ".join(f"word{i}" for i in range(300))  # one long sentence without a full stop
    chunks = chunk_pages([page], max_tokens=40, overlap_tokens=8)
    assert all(estimate_tokens(c.text) <= 40 for c in chunks)
    words = {w for c in chunks for w in c.text.split()}
    assert words == set(page.split())  # no word was split


def test_a_word_longer_than_a_whole_chunk_is_the_one_thing_cut():
    blob = "A" * 500  # base64 data, say
    chunks = chunk_pages([f"Before the blob. {blob} After it."], max_tokens=16, overlap_tokens=0)
    assert all(estimate_tokens(c.text) <= 16 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "").count("A") >= 500


def test_no_chunk_crosses_pages_and_indexes_run_across_the_document():
    pages = ["alpha " * 100, "", "beta " * 100, "   ", "gamma"]
    chunks = chunk_pages(pages, max_tokens=32, overlap_tokens=4)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.page for c in chunks} == {1, 3, 5}
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)
    for c in chunks:
        assert set(c.text.split()) == {{1: "alpha", 3: "beta", 5: "gamma"}[c.page]}


def test_the_same_pages_give_the_same_chunks():
    pages = [lesson(50), lesson(7, start=2)]
    assert chunk_pages(pages) == chunk_pages(list(pages))
    assert chunk_pages(pages, max_tokens=64, overlap_tokens=16) == chunk_pages(
        tuple(pages), max_tokens=64, overlap_tokens=16
    )


def test_no_pages_or_no_words_give_no_chunks():
    assert chunk_pages([]) == []
    assert chunk_pages(["", " \n "]) == []


def test_a_short_page_is_one_chunk():
    assert chunk_pages(["  Hello\n  world.  "]) == [Chunk(page=1, index=0, text="Hello world.")]


@pytest.mark.parametrize(
    ("max_tokens", "overlap_tokens", "message"),
    [
        (15, 0, "max_tokens must be at least 16, not 15"),
        (0, 0, "max_tokens must be at least 16, not 0"),
        (100, -1, r"overlap_tokens must be at least 0 and less than max_tokens / 2 \(50\), not -1"),
        (100, 50, r"overlap_tokens must be at least 0 and less than max_tokens / 2 \(50\), not 50"),
        (17, 9, r"overlap_tokens must be at least 0 and less than max_tokens / 2 \(8.5\), not 9"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument_and_its_range(
    max_tokens, overlap_tokens, message
):
    with pytest.raises(ValueError, match=message):
        chunk_pages(["text"], max_tokens=max_tokens, overlap_tokens=overlap_tokens)


def overlap(before: list[str], after: list[str]) -> list[str]:
    """The longest end of `before` that `after` starts with."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before[-size:] == after[:size]:
            return after[:size]
    return []


# --- properties ----------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        *("the", "cell", "energy", "photosynthesis", "x", "42", "1789,", "e.g.", "(see", "it)."),
        *("Why?", "yes!", "'quoted'", "don't", "naïve", "Ωmega", "über-long-compound-word"),
        *("\n", "\t", "  ", "A" * 40),
    ]
)
_PAGES = st.lists(st.lists(_WORDS, max_size=120).map(" ".join), max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    pages=_PAGES,
    max_tokens=st.integers(min_value=MIN_MAX_TOKENS, max_value=120),
    overlap_share=st.floats(min_value=0, max_value=0.49),
)
def test_chunks_cover_each_page_in_order_with_bounded_overlaps(pages, max_tokens, overlap_share):
    overlap_tokens = int(max_tokens * overlap_share)
    chunks = chunk_pages(pages, max_tokens=max_tokens, overlap_tokens=overlap_tokens)

    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks == chunk_pages(pages, max_tokens=max_tokens, overlap_tokens=overlap_tokens)
    for number, page in enumerate(pages, start=1):
        words = page.split()
        own = [c.text.split() for c in chunks if c.page == number]
        assert bool(own) == bool(words)
        for chunk in own:
            assert chunk
            assert estimate_tokens(" ".join(chunk)) <= max_tokens
        assert _walks_the_page(words, own, overlap_tokens)


def _walks_the_page(words: list[str], chunks: list[list[str]], overlap_tokens: int) -> bool:
    """Whether the chunks lie along the page in order, each a run of its words that starts
    inside (or right after) the previous one, repeats at most `overlap_tokens` of it and
    goes past its end, and together they cover every word.

    With repeated words a chunk can match at several places, so every placement is tried
    (memoised): "a a b b" cut as "a a b" + "b" must not be read as "a a b" + "b b".
    """

    @functools.cache
    def walk(index: int, previous_start: int, covered: int) -> bool:
        if index == len(chunks):
            return covered == len(words)
        chunk = chunks[index]
        return any(
            words[s : s + len(chunk)] == chunk
            and s + len(chunk) > covered
            and estimate_tokens(" ".join(words[s:covered])) <= overlap_tokens
            and walk(index + 1, s, s + len(chunk))
            for s in range(previous_start + 1, covered + 1)
        )

    return walk(0, -1, 0)
