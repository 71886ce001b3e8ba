"""Flat CPU tensors in memory that Linux is asked to back with 2 MiB pages: for ``workspace``'s large buffers.

Why: a `medium` step streams over 100 MB through buffers of 6 to 26 MB, a new 4 KiB page every 1,024 floats. In a
virtual machine each miss of the translation cache walks two sets of page tables (the guest's and the host's), which
2 MiB pages make rarer (what that is worth on a machine: ``LSTM_BENCH_HUGE_PAGES=0`` under
``python -m benchmarks.ab_compare``; docs/scratch_fast.md, "Memory"). This project's CPU machine gives huge pages
only to memory that asks for them (``/sys/kernel/mm/transparent_hugepage/enabled`` set to ``madvise``, a common
default). PyTorch's own allocator asks only when ``THP_MEM_ALLOC_ENABLE=1`` is in the environment at the process's
first allocation of 2 MiB or more (it reads it once): a setting for the whole process, ``nn.LSTM``'s memory
included, which is the user's to make, not this library's.

How, in plain Python: an anonymous private ``mmap`` with ``madvise(MADV_HUGEPAGE)``, and ``torch.frombuffer`` over
it, starting at the first 2 MiB boundary. The tensor keeps the mapping alive; the mapping is unmapped when the
last tensor over it is freed. Where the platform has no such advice (not Linux, or a kernel built without huge
pages) ``empty`` returns None; where the kernel takes the advice but gives none (huge pages set to ``never``, or
none free), the memory is simply in 4 KiB pages.

``LSTM_BENCH_HUGE_PAGES=0`` in the environment (or ``set_enabled(False)``) turns the advice off: the pool's buffers
then come from PyTorch's allocator, as before (to time the difference, or on a kernel where huge pages misbehave).
"""

from __future__ import annotations

import mmap
import os

import torch

HUGE_PAGE_BYTES = 2 << 20
KERNEL_MODE_FILE = "/sys/kernel/mm/transparent_hugepage/enabled"  # e.g. "always [madvise] never"

_enabled = os.environ.get("LSTM_BENCH_HUGE_PAGES", "1") != "0"


def set_enabled(enabled: bool) -> None:
    """Turn the advice on or off for buffers made from now on (it starts on unless ``LSTM_BENCH_HUGE_PAGES=0``)."""
    global _enabled
    _enabled = enabled


def platform_allows() -> bool:
    """Whether a process can ask for huge pages here (Linux, where Python has ``mmap.MADV_HUGEPAGE``)."""
    return hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap, "MAP_ANONYMOUS")


def available() -> bool:
    """Whether huge pages will be asked for: turned on, and ``platform_allows()``."""
    return _enabled and platform_allows()


def empty(numel: int, dtype: torch.dtype) -> torch.Tensor | None:
    """A flat CPU tensor of ``numel`` elements of ``dtype`` that starts on a 2 MiB boundary, in memory advised for
    huge pages (zero-filled by the kernel, as every new mapping is); None where ``available()`` is not, or where the
    kernel refuses the advice."""
    if not available():
        return None
    nbytes = numel * dtype.itemsize
    # One huge page more than the size rounded up, so that a 2 MiB boundary falls inside with the whole buffer after it.
    # The part before the boundary is never touched, so it never takes memory.
    length = -(-nbytes // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES + HUGE_PAGE_BYTES
    mapping = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        mapping.madvise(mmap.MADV_HUGEPAGE)  # before the first touch: pages are chosen when they are faulted in
    except OSError:  # a kernel built without transparent huge pages refuses the advice (EINVAL)
        mapping.close()
        return None
    start = torch.frombuffer(mapping, dtype=torch.uint8, count=1).data_ptr()
    # frombuffer makes a tensor of its own (not a view), holding ``mapping``: workspace pools it as a root buffer.
    return torch.frombuffer(mapping, dtype=dtype, count=numel, offset=-start % HUGE_PAGE_BYTES)


def kernel_mode() -> str:
    """The kernel's transparent huge page mode (``always``, ``madvise`` or ``never``), or ``unavailable``."""
    try:
        with open(KERNEL_MODE_FILE) as setting:
            text = setting.read()  # the chosen mode in brackets
    except OSError:
        return "unavailable"
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else "unavailable"


def settings() -> dict[str, str]:
    """Who gets huge pages in this process, for the record beside a timing: scratch_fast's pooled buffers (this
    module), PyTorch's allocator (``THP_MEM_ALLOC_ENABLE``, which helps ``nn.LSTM``) and the kernel's mode."""
    return {
        "workspace": "on" if available() else "off",
        "torch_allocator": "on" if os.environ.get("THP_MEM_ALLOC_ENABLE") == "1" else "off",
        "kernel": kernel_mode(),
    }
