"""Peak resident memory of this process (Linux), for the loader's memory test and benchmark.

``resource.getrusage`` reports the peak since the process started, which the imports (torch)
may already have set higher than anything measured later; Linux lets a process reset its peak
(``/proc/self/clear_refs``), so a measurement can start from the current size.
"""
from __future__ import annotations

import resource
from pathlib import Path


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def reset_peak_rss() -> float:
    """Reset the peak to the current resident size where the OS allows it; returns the current MiB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    current = _status_mb("VmRSS")
    return current if current is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """Peak resident size (MiB) since the last reset (or since the process started)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
