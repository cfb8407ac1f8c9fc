"""The fast lane's pipelined GET on a cluster-mode Redis: one connection per primary.

Prod's ElastiCache runs Redis in cluster mode (shards). redis-py's cluster client, which
the app's other Redis calls use, checks a connection out of a pool, wraps each command in
retries and a timeout and re-reads the slot map on redirects: correct, and several times
the CPU of a hit. The benchmark the capacity plan is sized from measures the pipelined
GET of services/runtime/redis_get.py, so prod runs that too: one `PipelinedGet` (one
auto-pipelined connection, hiredis) per primary, and each GET sent to the primary that
owns its key's slot (`redis.crc.key_slot`, the same hash tags redis-py honours:
`course:{<uuid>}:detail`).

The slot map comes from CLUSTER SLOTS, asked of the node REDIS_URL names (the
configuration endpoint) on the first GET, with its AUTH and TLS, and of every primary.
It is trusted only as long as the cluster agrees with it:

- Resharding: a slot being migrated answers ASK for keys already moved, a moved slot
  answers MOVED. Either fails that GET (`RedisGetFailed`: the caller takes the ordinary
  path, redis-py, which follows the redirect) and the map is read again in the
  background, at most once per `RETRY_AFTER_SECONDS`; GETs go to the new owner after that.
- Failover: the lost primary's connection fails its GETs, CLUSTERDOWN replies fail
  theirs, and both ask for a new map, which names the promoted replica once the cluster
  has voted. A primary that stops answering fails its GETs within the timeout.
- A slot the map has no owner for fails at once and asks for a new map.

Never a wrong value: a GET is sent only to the slot's owner in the current map, its
reply is used only if that node still owns the slot when the reply arrives, and a node
that no longer owns a slot answers MOVED or ASK, never a value (no READONLY is sent, so
a demoted primary redirects too).
"""

import asyncio
import time
from typing import Any

import structlog
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from services.runtime.redis_get import (
    RETRY_AFTER_SECONDS,
    ErrorReply,
    PipelinedGet,
    RedisGetFailed,
    Server,
)

__all__ = ["PipelinedClusterGet"]

_log = structlog.get_logger("eduscale.redis_cluster_get")
_STALE_MAP = ("MOVED ", "ASK ", "CLUSTERDOWN ")
"""Error replies that mean the slot map is out of date (others, e.g. WRONGTYPE, do not)."""


class PipelinedClusterGet:
    """GETs from the cluster of `url`, each on its slot's primary's pipelined connection."""

    def __init__(self, url: str, *, timeout: float) -> None:
        # A cluster has only database 0: no SELECT, whatever the URL says.
        self._seed = Server.of_url(url, select_db=False)
        self._timeout = timeout
        self._owners: list[PipelinedGet | None] | None = None
        self._nodes: dict[tuple[str, int], PipelinedGet] = {}
        self._seed_node = PipelinedGet(self._seed, timeout=timeout)
        self._refreshing: asyncio.Task[None] | None = None
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._last_refresh = float("-inf")
        self._refuse_until = 0.0
        self._closed = False

    async def get(self, key: bytes) -> bytes | None:
        """The value of `key`, None when it is not set; `RedisGetFailed` if Redis did not say."""
        owners = self._owners
        if owners is None:
            owners = await self._first_map()
        slot = key_slot(key)
        node = owners[slot]
        if node is None:
            self._refresh_soon()
            raise RedisGetFailed(f"no primary is known for slot {slot}")
        try:
            value = await node.get(key)
        except ErrorReply as error:
            if str(error).startswith(_STALE_MAP):
                self._refresh_soon()
            raise
        except RedisGetFailed:
            self._refresh_soon()  # a lost primary: a replica may be taking over
            raise
        current = self._owners
        if current is not owners and current is not None and current[slot] is not node:
            raise RedisGetFailed(f"slot {slot} changed hands while its GET was answered")
        return value

    async def aclose(self) -> None:
        """Close every connection and stop refreshing (the app's lifespan ends)."""
        self._closed = True
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        if self._refreshing is not None:
            self._refreshing.cancel()
        for node in (self._seed_node, *self._nodes.values()):
            await node.aclose()

    def _refresh_soon(self) -> None:
        """Read the slot map again: now, or `RETRY_AFTER_SECONDS` after the last reading."""
        if self._closed or self._refresh_timer is not None or self._refreshing is not None:
            return
        delay = max(0.0, self._last_refresh + RETRY_AFTER_SECONDS - time.monotonic())
        self._refresh_timer = asyncio.get_running_loop().call_later(delay, self._start_refresh)

    def _start_refresh(self) -> asyncio.Task[None]:
        self._refresh_timer = None
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
        return self._refreshing

    async def _first_map(self) -> list[PipelinedGet | None]:
        if time.monotonic() < self._refuse_until:
            raise RedisGetFailed("the cluster's slot map could not be read a moment ago")
        await asyncio.shield(self._refreshing or self._start_refresh())
        if self._owners is None:
            raise RedisGetFailed("the cluster's slot map could not be read")
        return self._owners

    async def _refresh(self) -> None:
        """Install the map the first node that answers gives; keep the old one if none does."""
        self._last_refresh = time.monotonic()
        try:
            why = "no node to ask"
            for node in (self._seed_node, *self._nodes.values()):
                try:
                    gone = self._install(await node.command(b"CLUSTER", b"SLOTS"))
                except (RedisGetFailed, ValueError) as error:
                    why = str(error)
                    continue
                for old in gone:
                    await old.aclose()  # its GETs in flight fail; their callers fall back
                return
            self._refuse_until = time.monotonic() + RETRY_AFTER_SECONDS
            _log.warning("redis_slot_map_unread", reason=why)
        finally:
            self._refreshing = None

    def _install(self, reply: Any) -> list[PipelinedGet]:
        """Route by the CLUSTER SLOTS `reply`; the nodes it no longer names are returned."""
        owners: list[PipelinedGet | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        nodes: dict[tuple[str, int], PipelinedGet] = {}
        for first, last, address in _slot_ranges(reply, self._seed.host):
            node = nodes.get(address) or self._nodes.get(address)
            if node is None:
                server = Server(address[0], address[1], self._seed.tls, self._seed.hello)
                node = PipelinedGet(server, timeout=self._timeout)
            nodes[address] = node
            owners[first : last + 1] = [node] * (last - first + 1)
        if set(nodes) != set(self._nodes):
            _log.info("redis_slot_map", primaries=sorted(f"{h}:{p}" for h, p in nodes))
        gone = [node for address, node in self._nodes.items() if address not in nodes]
        self._owners, self._nodes = owners, nodes
        return gone


def _slot_ranges(reply: Any, seed_host: str) -> list[tuple[int, int, tuple[str, int]]]:
    """(first slot, last slot, primary's address) of a CLUSTER SLOTS reply.

    The reply: [[first, last, [host, port, id, ...], replica, ...], ...]. An empty host is
    a node that does not know its own address (a one-node cluster): the seed's.
    """
    try:
        ranges = [
            (int(first), int(last), (primary[0].decode() or seed_host, int(primary[1])))
            for first, last, primary, *_ in reply
        ]
    except (TypeError, ValueError, IndexError, AttributeError) as error:
        raise ValueError(f"an unexpected CLUSTER SLOTS reply: {error}") from None
    for first, last, _ in ranges:
        if not 0 <= first <= last < REDIS_CLUSTER_HASH_SLOTS:
            raise ValueError(f"an unexpected CLUSTER SLOTS reply: slots {first}-{last}")
    return ranges
