"""Process profiles: the settings a benchmark process runs under, applied to every implementation alike.

Some settings move the times of every implementation, and not by the same amount: PyTorch's allocator in 2 MiB
pages (``THP_MEM_ALLOC_ENABLE=1``) speeds up ``nn.LSTM``'s large steps more than ``scratch_fast``'s, whose own
buffers already sit in huge pages. A ratio measured under one setting can flip under another, so the benchmark
runs every profile in a fresh process of its own (the settings are read when the process starts) and reports
them side by side.

- ``default``: the environment as the user has it; nothing is set.
- ``tuned``: what PyTorch's CPU performance guidance recommends for one process on one socket, where measured to
  help: the caching allocator's blocks in transparent huge pages, and glibc's allocator keeping freed memory
  instead of handing it back to the kernel (no ``mmap`` per large block, no trimming), which takes a fresh page
  fault per 4 KiB off every large allocation. Measured with ``python -m benchmarks.ab_compare --shape medium``
  under each setting (docs/scratch_fast.md, "Process settings"). Thread pinning and NUMA binding do not apply to
  one process on one socket.
"""

from __future__ import annotations

import os

PROFILES: dict[str, dict[str, str]] = {
    "default": {},
    "tuned": {"THP_MEM_ALLOC_ENABLE": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"},
}
# Every variable some profile sets: what a result records of its process, whichever profile it ran under.
SETTINGS = tuple(sorted({name for settings in PROFILES.values() for name in settings}))


def environment(profile: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a fresh process of ``profile`` starts with: ``base`` (this process's), with the profile's
    settings on top. ``default`` changes nothing."""
    return {**(os.environ if base is None else base), **PROFILES[profile]}


def settings_here() -> dict[str, str]:
    """The profile variables as this process has them ('' for unset)."""
    return {name: os.environ.get(name, "") for name in SETTINGS}


def mismatch(profile: str) -> str | None:
    """Why this process is not running under ``profile``'s settings, or None."""
    wrong = [f"{name}={value}" for name, value in PROFILES[profile].items() if os.environ.get(name) != value]
    return None if not wrong else f"profile {profile} needs {', '.join(wrong)} in the environment"
