"""The semantic cache's evaluation set and its tuning command.

The tuning command is run as an operator runs it, in a child process, against the local
OpenAI-compatible server standing for the provider (its embeddings are bags of words,
so the figures are not MiniLM's or OpenAI's: what is checked is that the command embeds
every labelled request with the configured model and size, and recommends a setting that
meets the goal on what it measured).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from benchmarks.semantic_cache_eval import (
    GOAL_FALSE_POSITIVE_PCT,
    Rates,
    Setting,
    _choose,
)
from benchmarks.semantic_cache_eval_set import (
    CATEGORIES,
    OTHER_ANSWER,
    SAME_ANSWER,
    SPLITS,
    load_eval_set,
)
from benchmarks.semantic_cache_pairs import KINDS, LabelFileError
from services.ai.semantic_cache import normalise_request
from services.generation_worker.generation import request_text

ROOT = Path(__file__).resolve().parents[1]

# --- the labelled set ------------------------------------------------------------------------


def test_the_set_holds_300_pairs_over_every_category_kind_and_split() -> None:
    pairs = load_eval_set()
    assert len(pairs) >= 300
    counts = Counter((pair.split, pair.category) for pair in pairs)
    for split in SPLITS:
        for category in CATEGORIES:
            assert counts[split, category] >= 10, (split, category)
        kinds = {(pair.category, pair.kind) for pair in pairs if pair.split == split}
        assert kinds == {(c, k) for c in CATEGORIES for k in KINDS}, split
    same = sum(pair.same_answer for pair in pairs)
    assert 0.4 * len(pairs) <= same <= 0.6 * len(pairs)
    assert {pair.category for pair in pairs if pair.same_answer} == set(SAME_ANSWER)
    assert {pair.category for pair in pairs if not pair.same_answer} == set(OTHER_ANSWER)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dev: {}\n", "expected exactly the splits dev, holdout"),
        ("dev: {sarcasm: {quiz: [[a, b]]}}\nholdout: {}\n", r"unknown keys \['sarcasm'\]"),
        ("dev: {typos: {essay: [[a, b]]}}\nholdout: {}\n", r"unknown keys \['essay'\]"),
        ("dev: {typos: {quiz: [[a, b, c]]}}\nholdout: {}\n", "is not a pair of texts"),
        (
            "dev: {typos: {quiz: [[Same text, same  TEXT]]}}\nholdout: {}\n",
            "asks the same text twice",
        ),
        ("dev: {typos: {quiz: [[a, b]]}}\nholdout: {typos: {quiz: [[a, b]]}}\n", "listed twice"),
    ],
)
def test_a_malformed_set_is_reported(tmp_path: Path, text: str, message: str) -> None:
    broken = tmp_path / "eval.yaml"
    broken.write_text(text)
    with pytest.raises(LabelFileError, match=message):
        load_eval_set(broken)


# --- the choice ------------------------------------------------------------------------------


def rates(hit: float, fp: float, negation: float = 0.0) -> Rates:
    return Rates(hit, fp, negation, {}, 100)


def test_the_choice_meets_the_goal_then_prefers_hits_then_a_higher_threshold() -> None:
    settings = [
        Setting("threshold_only", 0.5, rates(95, 40), rates(90, 40)),
        Setting("rules", 0.5, rates(86, 0), rates(70, 0)),
        Setting("rules", 0.6, rates(83, 0), rates(66, 0)),
        Setting("rules", 0.7, rates(77, 0), rates(64, 0)),
        Setting("guard", 0.5, rates(90, 1.5, negation=10), rates(80, 1)),
        Setting("paraphrase_model>=0.90", 0.5, rates(86, 0), rates(50, 0)),
    ]
    chosen = _choose(settings)
    # 86 is the best that qualifies (guard serves a negation); within 5 % of it the
    # highest threshold wins, and of equal hits the verifier the worker can run.
    assert chosen == settings[2]
    assert _choose([Setting("threshold_only", 0.9, rates(40, 20), rates(40, 20))]) is None
    assert rates(50, GOAL_FALSE_POSITIVE_PCT).meets_goal()
    assert not rates(50, GOAL_FALSE_POSITIVE_PCT + 0.1).meets_goal()


# --- the tuning command, against the provider the environment configures ---------------------


def tune(fake: FakeOpenAI, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "SEMANTIC_CACHE_"))
    }
    environ |= {
        "OPENAI_API_KEY": "test",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_EMBEDDING_MODEL": "text-embedding-3-small",
        "OPENAI_EMBEDDING_DIMENSIONS": "256",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.semantic_cache_eval", "--no-model", *args],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.server  # runs the tuning command in a process
def test_the_tuning_command_evaluates_the_configured_embeddings_and_recommends(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    outcome = tmp_path / "tuning.json"
    done = tune(fake_openai, "--json", str(outcome))
    assert done.returncode == 0, done.stderr
    assert "recommended for text-embedding-3-small: SEMANTIC_CACHE_THRESHOLD=" in done.stdout
    assert "the old decision" in done.stdout
    # Every labelled request went to the provider, with the worker's model and size.
    sent = [text for request in fake_openai.embedding_requests for text in request["input"]]
    expected = {
        normalise_request(request_text(pair.kind, text))
        for pair in load_eval_set()
        for text in (pair.stored, pair.probe)
    }
    assert set(sent) == expected
    assert {r["model"] for r in fake_openai.embedding_requests} == {"text-embedding-3-small"}
    assert {r["dimensions"] for r in fake_openai.embedding_requests} == {256}
    result = json.loads(outcome.read_text())
    recommended = result["recommended"]
    assert recommended["embedding_model"] == "text-embedding-3-small"
    assert recommended["verifier"] == "rules"
    chosen = result["candidates"]["rules"]
    assert chosen["threshold"] == recommended["threshold"]
    assert chosen["dev"]["false_positive_rate"] <= GOAL_FALSE_POSITIVE_PCT
    assert chosen["dev"]["negation_rate"] == 0
    # The old decision is measured in the same run, on the same vectors, as the reference.
    assert result["old"]["verifier"] == "threshold_only"
    assert result["old"]["threshold"] == 0.92
    assert result["configured"]["verifier"] == "rules"


@pytest.mark.server  # runs the tuning command in a process
def test_the_tuning_command_follows_the_threshold_the_environment_sets(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    outcome = tmp_path / "tuning.json"
    done = tune(fake_openai, "--json", str(outcome), SEMANTIC_CACHE_THRESHOLD="0.77")
    assert done.returncode == 0, done.stderr
    assert json.loads(outcome.read_text())["configured"]["threshold"] == 0.77


@pytest.mark.server  # runs the tuning command in a process
def test_the_tuning_command_needs_an_api_key(fake_openai: FakeOpenAI) -> None:
    done = tune(fake_openai, OPENAI_API_KEY="")
    assert done.returncode == 2
    assert "OPENAI_API_KEY is not set" in done.stderr
    assert fake_openai.embedding_calls == 0
