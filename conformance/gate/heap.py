"""The heap a run starts with, kept out of the garbage collector's full passes while the tests run, and given back after."""
from __future__ import annotations

import gc


class StartUpHeap:
    """Every object alive once the suite is collected (modules, schemas, the mock's world), in the collector's permanent
    generation from then until the run's config ends.

    Hypothesis allocates fast enough to start a full collection every few hundred cases, and each walks the whole heap,
    some 80,000 objects from the imports alone, none of them garbage: on the ci profile, 0.38 s of collector time in a
    2.9 s run, 0.19 s with the start-up heap frozen. Nothing is leaked: give_back returns the objects to the collector.
    """

    def __init__(self) -> None:
        self.frozen = False

    def freeze(self) -> None:
        """Freeze the heap as it is now, unless the host process manages its own (collector off, or a heap already frozen)."""
        if self.frozen or not gc.isenabled() or gc.get_freeze_count():
            return
        gc.freeze()
        self.frozen = True

    def give_back(self) -> None:
        """Return what freeze moved to the collector."""
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
