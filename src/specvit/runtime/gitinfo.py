"""The git state of the code that runs: commit and whether the working tree was dirty.

Kept apart from ``specvit.reporting.provenance`` because training records it too: a workflow job's
``code`` hash covers every specvit module its script imports, and this small module is the
only piece of provenance that training needs (editing the sidecar format must not retrain).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def repo_dir() -> Path:
    """The checkout whose code runs: ``SPECVIT_REPO`` (set by the Snakefile to its own
    directory, inherited by every job), else the directory of this package."""
    return Path(os.environ.get("SPECVIT_REPO") or Path(__file__).resolve().parent)


def git_state(path=None) -> dict:
    """{"commit": sha or None, "dirty": bool or None, "repo": path} of the git checkout at ``path``.

    None where ``path`` is not in a git checkout or git is not installed: provenance says
    plainly that the commit is unknown instead of failing the job."""
    path = Path(path) if path is not None else repo_dir()

    def git(*args):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None, "repo": str(path)}
        # tracked and untracked files count; results/ and the like are git-ignored
        status = git("status", "--porcelain")
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip()), "repo": str(path)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "repo": str(path)}
