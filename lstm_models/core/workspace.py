"""Large scratch buffers kept between calls, so a training step does not fault fresh memory in every time.

Why: on Linux, glibc's malloc hands allocations above 32 MiB (and, after trimming, many smaller ones) straight
to the kernel, which maps new zeroed pages on first touch. A buffer of (T, 4, B, H) float32 at T=100, B=64,
H=512 is 52 MB: about 13,000 page faults, some 40 ms of kernel time per allocation on this project's CPU machine.
``scratch_fast`` needs several such buffers per layer and step (the input projection, the backward's per-step
factors, the gate gradients); taking them from this pool turns that into a reuse of warm memory.

Rules that keep reuse safe:
- a buffer is in the pool only while nobody uses it: ``take`` removes it, ``give_back`` returns it;
- a buffer that autograd saves for a backward is given back by ``give_back_when_freed``, when the graph frees the
  saved view (after ``backward()`` without ``retain_graph``, or when the graph is dropped), never earlier, so
  two forward graphs alive at once, or a retained graph, never share memory;
- only CPU buffers are pooled: CUDA's caching allocator already reuses memory, with stream semantics this pool
  would not know;
- the pool is bounded (``MAX_BUFFERS_PER_SIZE``, ``MAX_SIZES``), so varying sequence lengths cannot grow it
  without limit.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import torch

# Below this, malloc serves buffers from memory it already holds, and the pool's bookkeeping (a lock, a weakref
# finalizer per saved buffer: several microseconds) would cost more than it saves at the tutorial's sizes.
MIN_POOLED_BYTES = 1 << 20
MAX_BUFFERS_PER_SIZE = 8  # a few layers' saved buffers plus the step's scratch
MAX_SIZES = 8  # distinct (numel, dtype) keys; the least recently used is dropped beyond this

_lock = threading.Lock()
_free: OrderedDict[tuple[int, torch.dtype], list[torch.Tensor]] = OrderedDict()


def _poolable(tensor: torch.Tensor) -> bool:
    # Tracing (torch.export, torch.compile) sees symbolic sizes and fake tensors: nothing real to reuse.
    tracing = torch.compiler.is_compiling() or torch.compiler.is_exporting()
    return not tracing and tensor.device.type == "cpu"


def take(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device: a pooled buffer when one is free."""
    if not _poolable(like):
        return like.new_empty(shape)
    numel = 1
    for size in shape:
        numel *= size
    if numel * like.element_size() < MIN_POOLED_BYTES:
        return like.new_empty(shape)
    key = (numel, like.dtype)
    with _lock:
        buffers = _free.get(key)
        if buffers:
            _free.move_to_end(key)
            return buffers.pop().view(shape)
    return like.new_empty(numel).view(shape)


def give_back(buffer: torch.Tensor) -> None:
    """Return a buffer from ``take`` that the caller no longer uses (no view of it may live on)."""
    if not _poolable(buffer) or buffer.numel() * buffer.element_size() < MIN_POOLED_BYTES:
        return
    flat = buffer.view(-1)
    key = (flat.numel(), flat.dtype)
    with _lock:
        buffers = _free.setdefault(key, [])
        _free.move_to_end(key)
        if len(buffers) < MAX_BUFFERS_PER_SIZE:
            buffers.append(flat)
        while len(_free) > MAX_SIZES:
            _free.popitem(last=False)


def give_back_when_freed(saved: torch.Tensor) -> None:
    """Return ``saved``'s buffer (from ``take``) to the pool once autograd has freed ``saved`` itself.

    The finalizer holds a second view of the memory, not ``saved``, so it does not keep ``saved`` alive."""
    if _poolable(saved) and saved.numel() * saved.element_size() >= MIN_POOLED_BYTES:
        weakref.finalize(saved, give_back, saved.view(-1))


def pooled_bytes() -> int:
    """Memory held by free buffers (for tests and diagnostics)."""
    with _lock:
        return sum(b.numel() * b.element_size() for buffers in _free.values() for b in buffers)


def clear() -> None:
    """Drop every free buffer (their memory goes back to the allocator)."""
    with _lock:
        _free.clear()
