"""Refresh rotations under wrk: the tokens chains start from, and proof that each rotated.

A refresh token is single-use: sent twice, it revokes its family and the second answer is
a 401. So the `auth_refresh` figure cannot cycle through a file of requests as the other
endpoints do; `lua/refresh.lua` sends each token once and the next request carries the
successor from the answer, as a client does. Here:

- the tokens each wrk run starts its chains from: one family per user, started by the Auth
  service's own `start_family` as a login starts one (through `POST /auth/login` it would
  cost an Argon2id verification each, a minute of CPU measuring nothing), one file per run
  (a run's last successors die with it);
- the checks that void a run that did not rotate: every answer a 200 carrying a token never
  seen before, as many as wrk counted; and afterwards, in the server's database, as many
  tokens spent as answers (plus at most the requests still in flight when a run stopped)
  and no family revoked, i.e. no token was ever sent twice.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from benchmarks.wrk import WrkError, WrkResult

__all__ = [
    "REFRESH_SCRIPT",
    "RESERVE_PER_CONNECTION",
    "StoredRotations",
    "check_rotations",
    "check_stored_rotations",
    "issue_refresh_tokens",
    "stored_rotations",
    "write_reserves",
]

REFRESH_SCRIPT = Path(__file__).parent / "lua" / "refresh.lua"
RESERVE_PER_CONNECTION = 2
"""Fresh tokens per connection and run: one starts its chain, one replaces a broken chain
(a broken chain means a refused answer, which voids the run anyway)."""
_COUNTS = ("rotated", "non_200", "stale", "from_reserve", "exhausted")
_TTL_SECONDS = 30 * 24 * 3600
"""REFRESH_TTL_SECONDS' default: the tokens outlive any run."""


async def _start_families(database_url: str, user_ids: list[uuid.UUID]) -> list[str]:
    from services.auth.refresh_tokens import start_family  # noqa: PLC0415

    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        tokens = [(await start_family(conn, user, _TTL_SECONDS)).token for user in user_ids]
        await conn.commit()
    return tokens


def issue_refresh_tokens(database_url: str, user_ids: list[uuid.UUID]) -> list[str]:
    """A fresh refresh token for each user, each the first of a new family."""
    return asyncio.run(_start_families(database_url, user_ids))


def write_reserves(scratch: Path, name: str, tokens: list[str], runs: int) -> list[Path]:
    """`tokens` split into `runs` files of one token a line, no token in two files."""
    if runs < 1 or len(tokens) < runs:
        raise ValueError(f"{len(tokens)} tokens cannot start {runs} run(s)")
    share = len(tokens) // runs
    paths = []
    for run in range(runs):
        path = scratch / f"{name}.{run}.tokens"
        path.write_text("".join(f"{token}\n" for token in tokens[run * share : (run + 1) * share]))
        paths.append(path)
    return paths


def check_rotations(result: WrkResult) -> None:
    """`WrkError` unless every answer of the run was a 200 carrying a new refresh token."""
    counts = result.script_counts
    missing = [name for name in _COUNTS if name not in counts]
    if missing:
        raise WrkError(
            f"the refresh script's counts are missing ({', '.join(missing)}): was the run "
            f"driven by {REFRESH_SCRIPT.name}?"
        )
    if (counts["non_200"] or counts["stale"] or counts["exhausted"]) or counts[
        "rotated"
    ] != result.requests:
        raise WrkError(
            f"{result.requests} answers, but {counts['rotated']} rotations: "
            f"{counts['non_200']} non-200, {counts['stale']} 200s without a new token, "
            f"{counts['exhausted']} requests without a token left; the figure would not "
            "measure rotations"
        )


@dataclass(frozen=True)
class StoredRotations:
    """What the server's database says happened to the refresh tokens."""

    spent: int
    revoked_families: int


def stored_rotations(database_url: str) -> StoredRotations:
    """Tokens spent and families revoked, counted in the database the server used."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL),"
            " (SELECT count(*) FROM refresh_families WHERE revoked_at IS NOT NULL)"
        ).fetchone()
    spent, revoked = row if row is not None else (0, 0)
    return StoredRotations(spent=int(spent), revoked_families=int(revoked))


def check_stored_rotations(stored: StoredRotations, answered: int, in_flight: int) -> None:
    """`WrkError` unless the database spent a token per answer and never saw one twice.

    `in_flight`: requests a run may have sent and the server served after wrk stopped
    counting (at most one per connection and run).
    """
    if stored.revoked_families:
        raise WrkError(
            f"{stored.revoked_families} refresh-token families were revoked: a token was "
            "sent twice, and the answers were refusals, not rotations"
        )
    if not answered <= stored.spent <= answered + in_flight:
        raise WrkError(
            f"the database spent {stored.spent} refresh tokens for {answered} answers "
            f"(up to {in_flight} more may have been in flight): not one rotation per request"
        )
