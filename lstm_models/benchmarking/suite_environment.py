"""The environment for a benchmark suite started as a process of its own (``repeat_grid``, the MLflow ``benchmark``
entry point)."""

from __future__ import annotations

import os


def suite_environment() -> dict[str, str]:
    """This process's environment without pytest-xdist's worker variables: pytest-benchmark reads them, and a
    suite started from inside an xdist worker (these commands under a parallel test run) would refuse to time
    anything ("Can't have both --benchmark-only and --benchmark-disable")."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST_")}
