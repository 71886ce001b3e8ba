"""``scratch_fast`` as it was at an earlier git revision, timed in a process of its own, to time a change against
its past.

The revision is checked out into a temporary ``git worktree``; a second process runs this checkout's
``ab_compare`` on that revision's ``lstm_models`` (put first on its ``sys.path``), timing ``native`` and
``scratch_fast`` there, and hands back its medians as JSON. The library never sees two copies of itself; the two
``scratch_fast``s are compared through their ratios to ``native``, each timed in its own process beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class RevisionError(ValueError):
    """The revision cannot be checked out or timed; the message says why."""


def _git(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RevisionError(f"cannot run git in {cwd}: {error}") from error


def medians_at(revision: str, timing_args: list[str]) -> dict[str, dict[str, float]]:
    """``{pass: {impl: median seconds}}`` for native and scratch_fast at ``revision`` (any name git accepts),
    timed by ``python -m benchmarks.ab_compare`` with ``timing_args`` (shape, rounds, threads)."""
    resolved = _git("rev-parse", "--verify", f"{revision}^{{commit}}")
    if resolved.returncode != 0:
        raise RevisionError(f"git knows no revision {revision!r}")
    with tempfile.TemporaryDirectory(prefix="lstm-bench-revision-") as scratch:
        tree, imports = Path(scratch) / "tree", Path(scratch) / "imports"
        added = _git("worktree", "add", "--detach", str(tree), resolved.stdout.strip())
        if added.returncode != 0:
            raise RevisionError(f"git cannot check out {revision!r}: {added.stderr.strip()}")
        try:
            imports.mkdir()
            (imports / "lstm_models").symlink_to(tree / "lstm_models", target_is_directory=True)
            json_path = Path(scratch) / "medians.json"
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(imports), str(REPO)])}
            timed = subprocess.run([sys.executable, "-m", "benchmarks.ab_compare", "--impls", "native,scratch_fast",
                                    *timing_args, "--json", str(json_path)], cwd=imports, env=env,
                                   capture_output=True, text=True)
            if timed.returncode != 0 or not json_path.exists():
                last = (timed.stderr.strip().splitlines() or ["no output"])[-1]
                raise RevisionError(f"timing {revision!r} failed: {last}")
            return json.loads(json_path.read_text())
        finally:
            _git("worktree", "remove", "--force", str(tree))
