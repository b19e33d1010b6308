"""Progress output for long steps: a tqdm bar on a terminal, periodic plain lines in log files."""
from __future__ import annotations

import sys
import time


class Progress:
    """Counts work units; prints a line every ``every`` seconds when stderr is not a terminal."""

    def __init__(self, total: int, desc: str, unit: str = "it", every: float = 10.0):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            print(f"{self.desc}: {self.done}/{self.total} {self.unit} "
                  f"({100 * self.done / self.total:.0f} %, {rate:,.0f} {self.unit}/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
