"""Cutting page texts into overlapping chunks small enough to embed and to quote.

Chunks are measured in tokens of OpenAI's tokenizers (cl100k_base for
text-embedding-3-*, o200k_base for the GPT-4o family). tiktoken would count them
exactly, but it downloads its vocabulary on first use, which the workers cannot do, so
`estimate_tokens` approximates the count from the text's shape (see its docstring).

`chunk_pages` is a pure function: the same pages give the same chunks, which is what
makes the indexer's point ids (document id, chunk index) idempotent.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MIN_MAX_TOKENS", "Chunk", "chunk_pages", "estimate_tokens"]

MIN_MAX_TOKENS = 16
"""The smallest `max_tokens` that `chunk_pages` accepts."""

_PIECE = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)\b"  # the English contractions, one token each
    r"|[^\w\s]?[^\W\d_]+"  # a run of letters, with the punctuation mark glued before it
    r"|\d{1,3}"  # numbers, in groups of up to three digits
    r"|[^\w\s]+"  # a run of other punctuation
    r"|_",
    re.IGNORECASE,
)
"""Roughly how cl100k_base pre-splits text before its byte-pair merges."""

_SHORT_WORD = 7
"""ASCII words up to this many letters are one token: most common English words are."""

_LETTERS_PER_EXTRA_TOKEN = 3
_PUNCTUATION_PER_TOKEN = 3
_TOKENS_PER_NON_ASCII_LETTER = 0.75

_SENTENCE_END = re.compile("[.!?\u2026][\"'\u201d\u2019)\\]]*$")
"""A word that ends a sentence: final punctuation, maybe inside quotes or brackets."""


@dataclass(frozen=True)
class Chunk:
    """A piece of one page of a document, to embed and to show as a search hit."""

    page: int
    """The page it comes from, 1-based."""
    index: int
    """Its position in the whole document, 0-based: consecutive across pages."""
    text: str
    """Its words, separated by single spaces."""


def estimate_tokens(text: str) -> int:
    """About how many tokens OpenAI's cl100k_base (or o200k_base) tokenizer makes of `text`.

    The text is split as the tokenizer's own pre-tokenizer does (runs of letters with a
    leading punctuation mark, digit groups of up to three, punctuation runs,
    contractions), and then each piece costs: an ASCII word of up to 7 letters, 1 token
    (common English words are single tokens); a longer one, 1 more for every 3 extra
    letters (rarer words split into pieces); a number, 1 per 3 digits; a punctuation run,
    1 per 3 marks; a word in another script, 0.75 per letter. Whitespace is free.

    Accuracy: within ±23 % of cl100k_base's true count on each of twenty sentences
    (English prose, punctuation, numbers, a URL, an email address, rare words, and one of
    lorem ipsum), and 3.2 % over on all of them together (tests/services/indexing/test_chunking.py).
    o200k_base's larger vocabulary should count English the same or a little lower (not
    measured). Other languages and code are rougher: non-Latin scripts are usually
    overestimated, which only makes chunks smaller.

    Two properties the chunker relies on: the estimate of words joined by spaces is the sum
    of their estimates, and no text is estimated at more than one token per character.
    """
    tokens = 0
    for match in _PIECE.finditer(text):
        piece = match.group()
        if piece[0].isdigit() or (piece[0] == "'" and piece[1:].isalpha()):
            tokens += 1
            continue
        letters = piece if piece[0].isalpha() else piece[1:]
        if not letters or not letters[0].isalpha():  # punctuation, or the underscore
            tokens += math.ceil(len(piece) / _PUNCTUATION_PER_TOKEN)
        elif not letters.isascii():
            tokens += math.ceil(len(letters) * _TOKENS_PER_NON_ASCII_LETTER)
        elif len(letters) <= _SHORT_WORD:
            tokens += 1
        else:
            tokens += 1 + math.ceil((len(letters) - _SHORT_WORD) / _LETTERS_PER_EXTRA_TOKEN)
    return tokens


def chunk_pages(
    pages: Sequence[str], *, max_tokens: int = 400, overlap_tokens: int = 60
) -> list[Chunk]:
    """Cut each page's text into chunks of at most `max_tokens` estimated tokens.

    Chunks end at a sentence boundary when one falls in the second half of the chunk,
    otherwise between two words. Each chunk after the first of a page starts with the end
    of the previous one, up to `overlap_tokens` (whole sentences when they fit, else
    words), so text cut at a boundary is whole in one of the two. A chunk never spans two
    pages, and a page without words has none. Chunk texts are the page's words joined by
    single spaces.

    Words are never split, with one exception: a "word" estimated at more than
    `max_tokens` (a hash, base64 data, a URL longer than the chunk) is cut every
    `max_tokens` characters, because the limit exists to keep each chunk embeddable.

    Args:
        pages: the text of each page, in order (page 1 first).
        max_tokens: the most tokens of a chunk, by `estimate_tokens`; at least 16.
        overlap_tokens: how much of the previous chunk to repeat; at least 0 and less
            than half of `max_tokens`.

    Raises:
        ValueError: an argument is out of its range; the message names it.
    """
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}, not {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens / 2:
        raise ValueError(
            f"overlap_tokens must be at least 0 and less than max_tokens / 2"
            f" ({max_tokens / 2:g}), not {overlap_tokens}"
        )
    chunks: list[Chunk] = []
    for number, text in enumerate(pages, start=1):
        for words in _page_chunks(_words(text, max_tokens), max_tokens, overlap_tokens):
            chunks.append(Chunk(page=number, index=len(chunks), text=" ".join(words)))
    return chunks


def _words(text: str, max_tokens: int) -> list[str]:
    words: list[str] = []
    for word in text.split():
        if estimate_tokens(word) <= max_tokens:
            words.append(word)
        else:  # at most one token per character, so these pieces fit
            words.extend(word[i : i + max_tokens] for i in range(0, len(word), max_tokens))
    return words


def _page_chunks(words: list[str], max_tokens: int, overlap_tokens: int) -> list[list[str]]:
    """The chunks of one page, as lists of its words (each word within `max_tokens`)."""
    costs = [estimate_tokens(word) for word in words]
    # starts[i]: word i begins a sentence.
    starts = [i == 0 or _SENTENCE_END.search(words[i - 1]) is not None for i in range(len(words))]
    chunks: list[list[str]] = []
    start = 0
    covered = 0  # words before this index are in some chunk already
    while covered < len(words):
        end, used = start, 0
        while end < len(words) and used + costs[end] <= max_tokens:
            used += costs[end]
            end += 1
        if end < len(words):
            end = _sentence_cut(
                starts, costs, start=start, end=end, covered=covered, max_tokens=max_tokens
            )
        chunks.append(words[start:end])
        covered = end
        if end < len(words):
            start = _overlap_start(
                starts, costs, start=start, end=end, overlap=overlap_tokens, max_tokens=max_tokens
            )
    return chunks


def _sentence_cut(
    starts: list[bool], costs: list[int], *, start: int, end: int, covered: int, max_tokens: int
) -> int:
    """The last sentence boundary in the chunk's second half and new words, else `end`."""
    used = sum(costs[start:end])
    for cut in range(end, covered, -1):
        if used < max_tokens / 2:
            break
        if starts[cut]:
            return cut
        used -= costs[cut - 1]
    return end


def _overlap_start(
    starts: list[bool], costs: list[int], *, start: int, end: int, overlap: int, max_tokens: int
) -> int:
    """Where the chunk after `words[start:end]` begins, repeating at most `overlap` tokens.

    The repeated words and the next word must fit in one chunk, so the chunker moves on.
    """
    budget = min(overlap, max_tokens - costs[end])
    first = end  # the earliest start within budget
    used = 0
    while first > start + 1 and used + costs[first - 1] <= budget:
        used += costs[first - 1]
        first -= 1
    for candidate in range(first, end):
        if starts[candidate]:
            return candidate
    return first
