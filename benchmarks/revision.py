"""``scratch_fast`` as it was at an earlier git revision, loaded beside today's, to time a change against its past.

The file ``lstm_models/core/scratch_fast.py`` is read with ``git show REV:...`` and run as a module of today's
``lstm_models.core`` package, so its relative imports resolve to today's siblings (``contract``, ``workspace``).
That holds for every revision since the file's helpers stopped changing shape; a revision whose file imports
something that no longer exists fails with the import error, which is reported as is.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRATCH_FAST_FILE = "lstm_models/core/scratch_fast.py"


class RevisionError(ValueError):
    """The revision cannot be read or its file cannot be loaded; the message says why."""


def scratch_fast_at(revision: str):
    """The ``ScratchFastLSTM`` class of ``revision``'s scratch_fast.py (any name git accepts: HEAD~2, a hash)."""
    try:
        shown = subprocess.run(["git", "show", f"{revision}:{SCRATCH_FAST_FILE}"], cwd=REPO, capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RevisionError(f"cannot run git in {REPO}: {error}") from error
    if shown.returncode != 0:
        raise RevisionError(f"git cannot show {SCRATCH_FAST_FILE} at {revision!r}: {shown.stderr.strip()}")
    import lstm_models.core  # the package whose modules the old file imports relatively

    name = f"lstm_models.core._scratch_fast_at_{abs(hash(revision))}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = lstm_models.core.__name__
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        exec(compile(shown.stdout, f"{revision}:{SCRATCH_FAST_FILE}", "exec"), module.__dict__)
    except Exception as error:
        del sys.modules[name]
        raise RevisionError(f"{SCRATCH_FAST_FILE} at {revision!r} does not load with today's package: "
                            f"{type(error).__name__}: {error}") from error
    return module.ScratchFastLSTM
