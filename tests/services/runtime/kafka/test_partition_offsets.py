"""The stored offset of a partition whose messages finish out of order."""

from services.runtime.kafka.offsets import PartitionOffsets

P = ("generation.requested", 0)


def test_out_of_order_completion_stores_only_the_lowest_unfinished_offset():
    offsets = PartitionOffsets()
    for offset in range(5):
        offsets.started(P, offset)
    assert offsets.finished(P, 3) is None  # 0, 1 and 2 still run: nothing may be stored
    assert offsets.finished(P, 1) is None
    assert offsets.finished(P, 0) == 2  # 2 is now the lowest unfinished
    assert offsets.finished(P, 4) is None  # 2 still runs
    assert offsets.finished(P, 2) == 5  # none unfinished: the last finished + 1
    assert offsets.unfinished(P) == frozenset()


def test_partitions_are_tracked_apart_and_forgotten_on_revoke():
    offsets = PartitionOffsets()
    other = ("generation.requested", 1)
    offsets.started(P, 10)
    offsets.started(other, 7)
    assert offsets.finished(other, 7) == 8
    assert offsets.unfinished(P) == frozenset({10})
    offsets.forget(P)
    assert offsets.unfinished(P) == frozenset()
    offsets.started(P, 4)  # assigned again later, from an earlier committed offset
    assert offsets.finished(P, 4) == 5
