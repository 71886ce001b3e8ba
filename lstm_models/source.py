"""Which code is running: the git commit of the checkout ``lstm_models`` is imported from, for the stamps on runs
and on benchmark results."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def source_commit() -> dict[str, object]:
    """``{"id": commit, "dirty": uncommitted changes to tracked files}``; id 'unknown' (dirty None) outside a git
    checkout, as in an installed copy."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=CHECKOUT,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"id": "unknown", "dirty": None}
    if head.returncode != 0:
        return {"id": "unknown", "dirty": None}
    return {"id": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
