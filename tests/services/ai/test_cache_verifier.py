"""The semantic cache's verifier on named cases: what must be served, what must not, and why.

Texts are what the worker hands the cache: `request_text(kind, instructions)`.
"""

from __future__ import annotations

import pytest

from services.ai.cache_verifier import (
    CHECKS,
    REASONS,
    VERIFIERS,
    RuleVerifier,
    ThresholdOnly,
    Verdict,
    verifier_named,
)
from services.ai.request_parser import MAX_REQUEST_CHARS, parse_pair
from services.generation_worker.generation import request_text

RULES = RuleVerifier()


def verdict(kind: str, stored: str, probe: str) -> Verdict:
    return RULES.verify(request_text(kind, stored), request_text(kind, probe))


# --- the same answer, asked in other words: served --------------------------------------------


@pytest.mark.parametrize(
    ("kind", "stored", "probe"),
    [
        (
            "quiz",
            "Ten questions on the water cycle",
            "Could you please make 10 questions on the water cycle? Thanks!",
        ),
        ("quiz", "Make the quiz harder", "make the quizz hardr"),
        (
            "quiz",
            "Multiple choice questions about fractions",
            "multiple choise questions abot fractions",
        ),
        (
            "quiz",
            "Five questions on the key terms, multiple choice",
            "Multiple choice, five questions on the key terms",
        ),
        (
            "quiz",
            "Difficult questions about the chapter",
            "Challenging questions about the chapter",
        ),
        ("quiz", "", "Please make a quiz"),
        ("summary", "A brief summary of the lesson", "Give me a short overview of the lesson"),
        ("summary", "Summarise the key dates and people", "Summarise the key people and dates"),
        (
            "summary",
            "The main points in three bullet points",
            "3 bullet points with the key points",
        ),
        ("explanation", "Explain it simply", "explain it in plain English please"),
        (
            "explanation",
            "Explain the difference between speed and velocity",
            "Could you kindly explain how speed and velocity differ?",
        ),
        (
            "explanation",
            "I don't understand how vaccines work, explain it",
            "Explain how vaccines work",
        ),
    ],
    ids=[
        "politeness",
        "typos",
        "typos-2",
        "word-order",
        "synonyms",
        "no-instructions",
        "synonym-verbs",
        "coordination",
        "number-words",
        "style",
        "difference",
        "learner-state",
    ],
)
def test_a_rewording_is_served(kind: str, stored: str, probe: str) -> None:
    assert verdict(kind, stored, probe) == Verdict(same_answer=True)


# --- another answer, in words that read alike: refused, with the reason -----------------------


@pytest.mark.parametrize(
    ("kind", "stored", "probe", "reason"),
    [
        # negation
        ("quiz", "A quiz with calculus", "A quiz without calculus", "negation"),
        (
            "quiz",
            "Include questions on the dates",
            "Do not include questions on the dates",
            "negation",
        ),
        (
            "explanation",
            "Explain why the reaction is exothermic",
            "Explain why the reaction isn't exothermic",
            "negation",
        ),
        ("explanation", "Explain why X is safe", "Explain why X is not safe", "negation"),
        (
            "summary",
            "Summarise the lesson including the examples",
            "Summarise the lesson, leave out the examples",
            "negation",
        ),
        (
            "quiz",
            "Questions on the causes, not the effects",
            "Questions on the effects, not the causes",
            "negation",
        ),
        # numbers
        ("quiz", "5 questions", "10 questions", "question_count"),
        (
            "quiz",
            "A ten-question quiz on fractions",
            "Five questions on fractions",
            "question_count",
        ),
        ("quiz", "Ten questions on chapter 3", "Ten questions on chapter 4", "number"),
        ("summary", "Summarise pages 10 to 20", "Summarise pages 10 to 30", "number"),
        (
            "summary",
            "Summarise the lesson in 100 words",
            "Summarise the lesson in 200 words",
            "number",
        ),
        ("explanation", "Explain it to a 7 year old", "Explain it to a 17 year old", "number"),
        # entities: two real words one typo apart are never merged
        ("quiz", "Questions about mitosis", "Questions about meiosis", "wording"),
        ("summary", "Summarise the part about Iran", "Summarise the part about Iraq", "wording"),
        ("explanation", "Explain how a photon behaves", "Explain how a proton behaves", "wording"),
        ("summary", "Summarise what Keynes argued", "Summarise what Hayek argued", "wording"),
        # antonyms
        ("quiz", "Make the questions easy", "Make the questions hard", "difficulty"),
        ("summary", "A brief summary", "A detailed summary", "wording"),
        (
            "summary",
            "Summarise the arguments for the policy",
            "Summarise the arguments against the policy",
            "wording",
        ),
        # audience
        ("quiz", "A quiz for beginners", "A quiz for experts", "audience"),
        ("summary", "Summarise it for a child", "Summarise it for a teacher", "audience"),
        # format
        ("summary", "Summary in bullet points", "Summary in one paragraph", "format"),
        ("quiz", "Multiple choice questions", "True or false questions", "format"),
        # language
        ("explanation", "Explain in Spanish", "Explain in French", "language"),
        ("summary", "Summary in simple English", "Summary in Spanish", "difficulty"),
        # scope
        (
            "quiz",
            "Questions about the key terms",
            "Questions about the key terms and the dates",
            "wording",
        ),
        (
            "summary",
            "Summarise the first half of the lesson",
            "Summarise the second half of the lesson",
            "wording",
        ),
        # order
        (
            "quiz",
            "More questions on algebra than on geometry",
            "More questions on geometry than on algebra",
            "order",
        ),
    ],
)
def test_another_answer_is_refused_with_what_differs(
    kind: str, stored: str, probe: str, reason: str
) -> None:
    assert verdict(kind, stored, probe) == Verdict(same_answer=False, reason=reason)
    # Both ways round: which one was stored first does not matter.
    assert verdict(kind, probe, stored).same_answer is False


def test_numbers_in_words_and_digits_are_the_same_number() -> None:
    first, second = parse_pair(
        request_text("quiz", "Ten multiple-choice questions on the main ideas"),
        request_text("quiz", "A quiz of 10 MCQs on the key ideas"),
    )
    assert first.question_count == second.question_count == {10}
    assert first.format == second.format == {"mcq"}
    assert first == second


def test_a_word_it_does_not_know_must_appear_in_both() -> None:
    # No lexicon knows every topic: an unknown word is never assumed to be a synonym.
    refused = verdict("explanation", "Explain the Krebs cycle", "Explain the Calvin cycle")
    assert refused == Verdict(same_answer=False, reason="wording")
    assert verdict(
        "explanation", "Explain the Krebs cycle", "explain the krebs cycle please"
    ).same_answer


def test_a_request_too_long_to_parse_is_a_rejection() -> None:
    long = request_text("summary", "Summarise the lesson " + "and the homework " * 60)
    assert len(long) > MAX_REQUEST_CHARS
    assert RULES.verify(long, long) == Verdict(same_answer=False, reason="unsure")


def test_requests_of_two_kinds_are_never_the_same() -> None:
    assert RULES.verify(
        request_text("quiz", "fractions"), request_text("summary", "fractions")
    ) == (Verdict(same_answer=False, reason="kind"))


def test_the_reference_decision_accepts_everything() -> None:
    assert ThresholdOnly().verify("quiz: with calculus", "quiz: without calculus").same_answer


def test_partial_verifiers_check_only_their_fields() -> None:
    scope, guard = VERIFIERS["scope"], VERIFIERS["guard"]
    negated = (request_text("quiz", "with calculus"), request_text("quiz", "without calculus"))
    audience = (request_text("quiz", "for beginners"), request_text("quiz", "for experts"))
    assert scope.verify(*negated).same_answer
    assert not scope.verify(*audience).same_answer
    assert not guard.verify(*negated).same_answer
    assert guard.verify(*audience).same_answer


def test_verifiers_are_named_and_reasons_are_listed() -> None:
    assert verifier_named("rules") is VERIFIERS["rules"]
    with pytest.raises(ValueError, match="unknown cache verifier 'llm'; known: guard, rules"):
        verifier_named("llm")
    with pytest.raises(ValueError, match="unknown checks"):
        RuleVerifier(("negation", "vibes"))
    assert set(CHECKS) <= set(REASONS)
    assert {"unsure", "kind"} <= set(REASONS)
