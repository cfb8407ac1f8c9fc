"""Two generation requests reduced to what decides their answers, so they can be compared.

A request ("quiz: 10 hard questions on chapter 3, no calculator please") becomes a
`ParsedRequest`: its structured fields (how many questions, difficulty, format, audience,
language), what it turns down ("not"/"without" and the concept they bind to), its
other numbers with the concept each one counts or names, the order of the words around
"than"/"into"/"vs", and every remaining concept. Words that never change an answer are
dropped and synonyms share one concept (`request_words`).

Requests are parsed in pairs because typing errors are resolved against the other
request: a word that is not English ("qeustions") becomes the word it is one edit away
from, preferring a word of the other request, then a word the lexicon knows. Two real
words are never merged ("mitosis"/"meiosis", "Iran"/"Iraq"), unless one is so rare next to
the other that it is almost certainly a slip ("summery" for "summary"); the English word
frequencies come from pyspellchecker's dictionary.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from spellchecker import SpellChecker

from services.ai.request_words import (
    CONTRACTIONS,
    DROP,
    KIND_WORDS,
    LANGUAGES,
    NEGATORS,
    NUMBER_WORDS,
    PHRASES,
    PLURAL_KEEP,
    QUESTION_NOUN,
    RELATIONS,
    WORDS,
)

__all__ = ["MAX_REQUEST_CHARS", "ParsedRequest", "RequestTooLong", "load_words", "parse_pair"]

MAX_REQUEST_CHARS = 600
"""Longer instructions are not parsed: too much can hide in them for a rule to be sure."""
_TYPO_RATIO = 20
"""A real word is read as a slip for another only when that one is this much more common..."""
_RARE_WORD = 200
"""...and it is rare itself (fewer uses than this in the dictionary's corpus): "summery"."""
_MIN_TYPO_LENGTH = 3
_MAX_MODIFIERS = 4
"""Words allowed between a number and "questions" ("10 short multiple choice questions")."""
_BOUNDARY = "|"
_PUNCTUATION = frozenset(".,;:!?()")
_NOT = "<not>"
_KINDS = frozenset(KIND_WORDS)
_PREFIX = re.compile(r"^\s*([a-z]+):\s*")
_TOKEN = re.compile(r"\d+(?:st|nd|rd|th)\b|\d+(?:\.\d+)?|[a-z]+|[.,;:!?()]")
_LONGEST_PHRASE = max(len(phrase) for phrase in PHRASES)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_BEFORE_PRONOUN_US = frozenset(
    [
        "give",
        "tell",
        "show",
        "help",
        "let",
        "make",
        "send",
        "teach",
        "explain",
        "for",
        "to",
        "with",
        "and",
        "of",
    ]
)
"""After these, "us" is the pronoun ("give us a quiz"); anywhere else it may be the country."""
_FACETS = {"lvl:": "difficulty", "fmt:": "format", "aud:": "audience", "lang:": "language"}


class RequestTooLong(ValueError):
    """The request is longer than `MAX_REQUEST_CHARS`: it is not compared by rules."""


@dataclass(frozen=True)
class ParsedRequest:
    """What decides a request's answer; two requests with equal fields want one answer."""

    kind: str
    question_count: frozenset[int]
    """The number of questions asked for ("10 questions", "a ten-question quiz")."""
    difficulty: frozenset[str]
    format: frozenset[str]
    audience: frozenset[str]
    language: frozenset[str]
    negation: frozenset[str]
    """Concepts turned down: "not:formula" for "without the formula"."""
    number: frozenset[str]
    """Other numbers with what they count ("100*word") or name ("chapter#3")."""
    order: frozenset[str]
    """The neighbours of "than", "into", "vs" in order: "cat>than>dog"."""
    wording: frozenset[str]
    """Every other concept: the topic, names, what to focus on."""


def parse_pair(stored: str, probe: str) -> tuple[ParsedRequest, ParsedRequest]:
    """Both requests parsed, each one's typing errors read against the other's words."""
    first_kind, first = _tokens(stored)
    second_kind, second = _tokens(probe)
    first_fixed = _fix_typos(first, second)
    second_fixed = _fix_typos(second, first)
    return _parse(first_kind, first_fixed), _parse(second_kind, second_fixed)


def load_words() -> None:
    """Load the English dictionary and the lexicon now (about 0.3 s) instead of on first use."""
    _dictionary()
    _content_lexicon()


# --- words -------------------------------------------------------------------------------


def _tokens(text: str) -> tuple[str, list[str]]:
    """The kind named by the request's prefix, and its words and clause boundaries."""
    if len(text) > MAX_REQUEST_CHARS:
        raise RequestTooLong(f"{len(text)} characters")
    text = text.casefold().replace("\u2019", "'")
    kind = ""
    prefix = _PREFIX.match(text)
    if prefix and prefix.group(1) in _KINDS:
        kind, text = prefix.group(1), text[prefix.end() :]
    if text.strip() == "default":  # `request_text` of a request without instructions
        text = ""
    text = text.replace("tl;dr", " tldr ").replace("q&a", " qa ").replace("t/f", " truefalse ")
    text = text.replace("&", " and ").replace("-", " ").replace("/", " ")
    for contraction, expanded in CONTRACTIONS.items():
        text = text.replace(contraction, expanded)
    text = re.sub(r"n't\b", " not", text)
    text = re.sub(r"'(m)\b", " am", text)
    text = re.sub(r"'re\b", " are", text)
    text = re.sub(r"'ve\b", " have", text)
    text = re.sub(r"'ll\b", " will", text)
    text = re.sub(r"'d\b", " would", text)
    text = re.sub(r"'s\b|'", " ", text)
    # "ones" ("easy questions and some hard ones") is a pronoun, not the number 1.
    words = [word for word in _TOKEN.findall(text) if word != "ones"]
    return kind, [_BOUNDARY if word in _PUNCTUATION else word for word in words]


@cache
def _dictionary() -> SpellChecker:
    """English words and their frequencies (loaded once, about 0.3 s)."""
    return SpellChecker(language="en", distance=1)


@cache
def _lexicon() -> frozenset[str]:
    """Every word the request lexicon knows: typing errors are read toward these.

    Content words also in their plural forms; the small words (DROP) only as listed, so
    "mix" never becomes "six" nor "dates" "ates".
    """
    content: set[str] = set(WORDS) | set(LANGUAGES) | {w for ws in KIND_WORDS.values() for w in ws}
    content |= {word for phrase in PHRASES for word in phrase} - DROP
    content = {word for word in content if word.isalpha()}
    words = content | {f"{word}s" for word in content} | {f"{word}es" for word in content}
    words |= set(DROP) | set(NEGATORS) | set(RELATIONS) | set(NUMBER_WORDS)
    return frozenset(word for word in words if word.isalpha())


@cache
def _content_lexicon() -> frozenset[str]:
    """The lexicon without the small words: what a real English word may be read as."""
    return _lexicon() - DROP


def _frequency(word: str) -> float:
    """How common an English word is; the lexicon's own shorthands (pls, mcq) count as common."""
    counted = float(_dictionary()[word])
    if counted == 0 and word in _lexicon():
        return float("inf")
    return counted


def _edits(word: str) -> set[str]:
    """Every string one deletion, transposition, replacement or insertion away (Norvig)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {left + right[1:] for left, right in splits if right}
    swaps = {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
    replaces = {left + c + right[1:] for left, right in splits if right for c in _LETTERS}
    inserts = {left + c + right for left, right in splits for c in _LETTERS}
    return deletes | swaps | replaces | inserts


def _fix_typos(tokens: list[str], other: Iterable[str]) -> list[str]:
    other_words = {token for token in other if token.isalpha()}
    lexicon = _lexicon()
    return [
        token
        if not token.isalpha()
        or len(token) < _MIN_TYPO_LENGTH
        or token in other_words
        or token in lexicon
        else _intended(token, other_words, lexicon)
        for token in tokens
    ]


def _intended(token: str, other_words: set[str], lexicon: frozenset[str]) -> str:
    """The word a typing error meant, or the token itself when nothing is near enough.

    A real English word is only read as another when it is rare, the other is far more
    common and a word of the lexicon, never one the parser drops ("setting" is not
    "getting"): erasing or swapping a real word could make two different requests alike.
    """
    own = _frequency(token)
    if own >= _RARE_WORD:
        return token
    near = _edits(token)
    # A rare real word ("summery") is only read as a word of the lexicon ("summary"):
    # read toward the other request, "cation" would become its "nation".
    candidates = near & _content_lexicon() if own else near & other_words or near & lexicon
    ranked = sorted(candidates, key=lambda word: (word not in other_words, -_frequency(word), word))
    # Two words neither of which is English are two names ("DNA"/"RNA"): never merged.
    return next(
        (
            word
            for word in ranked
            if _frequency(word) > 0 and (own == 0 or _frequency(word) >= _TYPO_RATIO * own)
        ),
        token,
    )


def _lemma(word: str) -> str:
    """The singular of a plural noun (or the base of a verb's s): "ideas" -> "idea"."""
    if not word.isalpha() or word in PLURAL_KEEP or len(word) <= 3:  # noqa: PLR2004
        return word
    if word.endswith("ies") and len(word) > 4:  # noqa: PLR2004
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ics")):
        return word[:-1]
    return word


# --- concepts ----------------------------------------------------------------------------


def _concepts(kind: str, tokens: list[str]) -> list[str]:
    """Phrases and words as concepts, numbers as `#n`, negators as `<not>`, boundaries `|`.

    "from ... to ..." keeps its direction ("from Celsius to Fahrenheit" is not the
    reverse); a lone "to" ("explain it to a beginner") is dropped like other prepositions.
    """
    words = [_lemma(token) for token in tokens]
    own_words = KIND_WORDS.get(kind, frozenset())
    items: list[str] = []
    position = 0
    direction = False
    while position < len(words):
        word = words[position]
        direction = direction and word != _BOUNDARY
        if word == "us" and (position == 0 or words[position - 1] not in _BEFORE_PRONOUN_US):
            items.append("usa")  # "US history", "the US": the country, not "give us"
            position += 1
            continue
        if word == "from" or (word == "to" and direction):
            direction = True
            items.append(f"<rel:{word}>")
            position += 1
            continue
        for length in range(min(_LONGEST_PHRASE, len(words) - position), 1, -1):
            phrase = tuple(words[position : position + length])
            if phrase in PHRASES:
                items.extend(_NOT if c == "not" else c for c in PHRASES[phrase])
                position += length
                break
        else:
            items.extend(_word(word, own_words))
            position += 1
    return items


def _word(word: str, own_words: frozenset[str]) -> list[str]:
    """One word as its concepts (none when it is dropped)."""
    if word == _BOUNDARY or word in own_words:
        return [word] if word == _BOUNDARY else []
    if word.replace(".", "", 1).isdigit() or word in NUMBER_WORDS:
        return [f"#{NUMBER_WORDS.get(word, word)}"]
    if word in NEGATORS or word in RELATIONS:
        return [_NOT if word in NEGATORS else f"<rel:{word}>"]
    if word in WORDS:
        return WORDS[word].split()
    if word in LANGUAGES:
        return [f"lang:{word}"]
    return [] if word in DROP else [word]


def _is_concept(item: str) -> bool:
    return item not in (_BOUNDARY, _NOT) and not item.startswith(("#", "<"))


def _neighbour(items: list[str], start: int, step: int) -> int | None:
    """The nearest concept from `start` in direction `step`, within the clause."""
    position = start
    while 0 <= position < len(items) and items[position] != _BOUNDARY:
        if _is_concept(items[position]):
            return position
        position += step
    return None


def _parse(kind: str, tokens: list[str]) -> ParsedRequest:
    items = _concepts(kind, tokens)
    counts = _take_question_counts(items)
    items = [
        ("question" if kind != "quiz" else "") if item == QUESTION_NOUN else item for item in items
    ]
    items = [item for item in items if item]
    negated = _bind_negations(items)
    numbers: set[str] = set()
    order: set[str] = set()
    for position, item in enumerate(items):
        if item.startswith("#"):
            numbers.add(_bound_number(items, position))
        elif item.startswith("<rel:"):
            before, after = _neighbour(items, position - 1, -1), _neighbour(items, position + 1, 1)
            if item == "<rel:from>":  # where from matters, not what comes before it
                before = None
            order.add(
                f"{items[before] if before is not None else ''}>{item}>"
                f"{items[after] if after is not None else ''}"
            )
    concepts = [item for item in items if _is_concept(item)]
    facets: dict[str, set[str]] = {name: set() for name in _FACETS.values()}
    wording = set()
    for concept in concepts:
        prefix = next((p for p in _FACETS if concept.startswith(p)), None)
        if prefix is None:
            wording.add(concept)
        else:
            facets[_FACETS[prefix]].add(concept.removeprefix(prefix))
    return ParsedRequest(
        kind=kind,
        question_count=frozenset(counts),
        difficulty=frozenset(facets["difficulty"]),
        format=frozenset(facets["format"]),
        audience=frozenset(facets["audience"]),
        language=frozenset(facets["language"]),
        negation=frozenset(negated),
        number=frozenset(numbers),
        order=frozenset(order),
        wording=frozenset(wording),
    )


def _take_question_counts(items: list[str]) -> set[int]:
    """Numbers that count questions ("10 hard questions"), removed from `items`."""
    counts = set()
    for position, item in enumerate(items):
        if not item.startswith("#"):
            continue
        ahead = position + 1
        while (
            ahead < len(items)
            and ahead - position <= _MAX_MODIFIERS
            and items[ahead].startswith(("lvl:", "fmt:", "short", "long", "main"))
        ):
            ahead += 1
        if ahead < len(items) and items[ahead] == QUESTION_NOUN:
            counts.add(int(float(item[1:])))
            items[position] = ""
    return counts


def _bind_negations(items: list[str]) -> set[str]:
    """Mark the concept each negator turns down; returns the marks ("not:formula")."""
    negated = set()
    for position, item in enumerate(items):
        if item != _NOT:
            continue
        target = _neighbour(items, position + 1, 1)
        if target is None:
            target = _neighbour(items, position - 1, -1)
        if target is None:
            negated.add("not:")
            continue
        negated.add(f"not:{items[target]}")
        items[target] = f"<negated:{items[target]}>"
    return negated


def _bound_number(items: list[str], position: int) -> str:
    """A number with the concept it counts (next) or names (previous): "3*page", "page#3"."""
    value = items[position][1:]
    after = _neighbour(items, position + 1, 1)
    if after is not None:
        return f"{value}*{items[after]}"
    before = _neighbour(items, position - 1, -1)
    if before is not None:
        return f"{items[before]}#{value}"
    return f"#{value}"
