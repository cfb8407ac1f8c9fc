"""Start-up's objects kept out of the garbage collector's full passes.

A service builds most of its heap once: Litestar's routes and signature models, pydantic
settings, the modules of every library it imports (chDB's among them in the Course
service). It lives as long as the process, yet CPython's full (generation 2) collection
walks all of it again whenever requests have allocated enough, with the event loop
stopped meanwhile. Measured on the Course service at ~25,000 cached reads a second: a
full collection every second or two, each stopping the loop for 50 to 65 ms, which put
the read's p99 at 35 to 50 ms against 2 to 3 ms for the same read between collections
(docs/benchmarks.md, "Fourth pass"). `gc.freeze()` at the end of start-up moves every
object alive then into a generation no collection visits: a full pass then walks only
what requests made, and takes a few milliseconds. What is frozen is still freed by
reference counting; only cycles among start-up objects that die later wait for the
thaw at shutdown, which hands them back to the collector.
"""

import gc

__all__ = ["freeze_startup_heap", "thaw_startup_heap"]


def freeze_startup_heap() -> None:
    """Collect start-up's garbage, then freeze what is left (the app's lifetime heap)."""
    gc.collect()
    gc.freeze()


def thaw_startup_heap() -> None:
    """Give the frozen objects back to the collector: the app is stopping."""
    gc.unfreeze()
