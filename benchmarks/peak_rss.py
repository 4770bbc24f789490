"""The peak resident memory of this process while a block runs, above what it was before.

    with PeakRss() as peak:
        ...
    print(f"peak +{peak.growth_gib:.2f} GiB")

Sampled every 20 ms by a thread of its own (the process's, not its children's).
"""

from __future__ import annotations

import threading
from types import TracebackType

import psutil


class PeakRss:
    def __init__(self, every_s: float = 0.02) -> None:
        self._process = psutil.Process()
        self._every_s = every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.before = self.peak = 0

    def _sample(self) -> None:
        while not self._done.wait(self._every_s):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.before = self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_gib(self) -> float:
        return (self.peak - self.before) / 2**30
