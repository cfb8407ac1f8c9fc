"""Which offset of each partition may be stored while several of its messages are in flight.

Messages of one partition finish out of order when they run concurrently. Storing a
finished message's offset would tell the group that every earlier message is done too,
and a crash would then lose the earlier ones still running. So the stored offset of a
partition is its lowest unfinished offset, or the last finished one + 1 when none is
unfinished: a restart redoes at most what was in flight, never skips any of it.
"""

__all__ = ["PartitionOffsets"]

Partition = tuple[str, int]


class PartitionOffsets:
    """The in-flight offsets of each partition, and the offset each may store."""

    def __init__(self) -> None:
        self._unfinished: dict[Partition, set[int]] = {}
        self._next: dict[Partition, int] = {}
        self._stored: dict[Partition, int] = {}

    def started(self, partition: Partition, offset: int) -> None:
        """`offset` is in flight: nothing from it on may be stored until it finishes."""
        self._unfinished.setdefault(partition, set()).add(offset)
        self._stored.setdefault(partition, offset)  # where the partition was when we got it

    def finished(self, partition: Partition, offset: int) -> int | None:
        """`offset` is done; the offset to store now, or None if it did not advance."""
        unfinished = self._unfinished.get(partition, set())
        unfinished.discard(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)
        storable = min(unfinished) if unfinished else self._next[partition]
        if storable <= self._stored.get(partition, -1):
            return None
        self._stored[partition] = storable
        return storable

    def unfinished(self, partition: Partition) -> frozenset[int]:
        """The offsets of `partition` still in flight."""
        return frozenset(self._unfinished.get(partition, ()))

    def forget(self, partition: Partition) -> None:
        """The partition went to another member; a later assignment starts afresh."""
        self._unfinished.pop(partition, None)
        self._next.pop(partition, None)
        self._stored.pop(partition, None)
