"""A test hook: stop a job at a named point so that a test can kill it there, as a cluster would.

With ``SPECVIT_PAUSE_AT=<point>`` (or ``<point>:<k>``, the k-th time the point is reached; default
1) and ``SPECVIT_PAUSE_DIR=<folder>`` in the environment, a process that reaches the point writes
the file ``<folder>/<point>.<pid>`` and sleeps until it is killed. Without the variable
``pause_point`` returns at once. Points:

- ``simulate_block``: a block of rows of a synthetic split was written (the file is half done);
- ``train_step``: one optimiser step of a ViT epoch was taken;
- ``evaluate_view``: a run's test predictions were written, its metrics table not yet.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

_reached: dict[str, int] = {}


def pause_point(name: str) -> None:
    wanted = os.environ.get("SPECVIT_PAUSE_AT")
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] != int(count or 1):
        return
    marker = Path(os.environ["SPECVIT_PAUSE_DIR"]) / f"{name}.{os.getpid()}"
    marker.write_text(str(os.getpid()))
    while True:  # until killed
        time.sleep(1)
