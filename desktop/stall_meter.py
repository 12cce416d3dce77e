"""How long the GUI event loop goes without running: the gaps between ticks of a 5 ms timer.

A gap far above the interval means something ran on the GUI thread for that long (a slot, a paint,
a blocking call) and the window could not repaint or take input. Used by the responsiveness test
and `benchmarks/gui_stall.py`. Create, start and stop it on the GUI thread.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer


class StallMeter:
    def __init__(self, interval_ms: int = 5) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []  # seconds between consecutive ticks (the first from start())
        self._last = 0.0

    @property
    def ticks(self) -> int:
        return len(self.gaps)

    @property
    def worst(self) -> float:
        return max(self.gaps, default=0.0)

    def percentile(self, q: float) -> float:
        """The gap that ``q`` (0–100) percent of gaps do not exceed (nearest rank)."""
        if not self.gaps:
            return 0.0
        ordered = sorted(self.gaps)
        rank = max(1, -(-len(ordered) * q // 100))  # ceil, at least the first
        return ordered[int(rank) - 1]

    def start(self) -> None:
        """Start measuring afresh (earlier gaps are dropped)."""
        self.gaps = []
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        """Stop; returns the worst gap in seconds."""
        self.timer.stop()
        return self.worst

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now
