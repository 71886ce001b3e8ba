"""Large scratch buffers kept between calls, so a training step does not fault fresh memory in every time.

Why: on Linux, glibc's malloc hands allocations above 32 MiB (and, after trimming, many smaller ones) straight
to the kernel, which maps new zeroed pages on first touch. A buffer of (T, 4, B, H) float32 at T=100, B=64,
H=512 is 52 MB: about 13,000 page faults, each a trip into the kernel, per allocation.
``scratch_fast`` needs several such buffers per layer and step (the input projection, the backward's per-step
factors, the gate gradients); taking them from this pool turns that into a reuse of warm memory.

New buffers of 2 MiB or more are made in memory advised for huge pages (``huge_pages``): the time loops stream
through them step by step, a new 4 KiB page every 1,024 floats (docs/scratch_fast.md, "Memory").

Rules that keep reuse safe:
- a buffer is in the pool only while nobody uses it: ``take`` removes it, ``give_back`` returns it;
- a buffer that autograd saves for a backward is given back by ``give_back_when_freed``, when the graph frees the
  saved view (after ``backward()`` without ``retain_graph``, or when the graph is dropped), never earlier, so
  two forward graphs alive at once, or a retained graph, never share memory;
- only CPU buffers are pooled: CUDA's caching allocator already reuses memory, with stream semantics this pool
  would not know; nothing is pooled under ``torch.inference_mode`` (its tensors cannot be written outside it);
- a request takes the smallest free buffer that holds it, up to ``MAX_OVERSIZE`` times larger, so sequence lengths
  that vary from batch to batch share buffers; the pool keeps at most ``MAX_FREE_BUFFERS`` free buffers per dtype.
"""

from __future__ import annotations

import threading
import weakref

import torch

from . import huge_pages
from .tracing import tracing

# Below this, malloc serves buffers from memory it already holds, and the pool's bookkeeping (a lock, a weakref
# finalizer per saved buffer: several microseconds) would cost more than it saves at the tutorial's sizes.
MIN_POOLED_BYTES = 1 << 20
# Free buffers kept per dtype: a few layers' saved buffers plus a step's scratch. Beyond it the oldest goes back to
# the allocator, so the pool never holds more than this many buffers of the largest size seen.
MAX_FREE_BUFFERS = 16
# A request is served from a free buffer at most this many times its size: sequence lengths that vary from batch
# to batch share buffers, while a small request does not tie up a much larger buffer.
MAX_OVERSIZE = 2

_lock = threading.Lock()
_free: dict[torch.dtype, list[torch.Tensor]] = {}  # flat buffers, oldest first


def poolable(tensor: torch.Tensor) -> bool:
    # Tracing (torch.export, torch.compile) sees symbolic sizes and fake tensors: nothing real to reuse. Under
    # torch.inference_mode (Lightning's validation and predict loops) new tensors are inference tensors, which
    # may never be written outside it: pooled, one would break the next training step.
    return (not tracing() and tensor.device.type == "cpu" and not torch.is_inference_mode_enabled()
            and not tensor.is_inference())


def large_enough(numel, element_size: int) -> bool:
    """Whether a buffer of ``numel`` elements is worth pooling. Checked before ``poolable``: at the tutorial's sizes
    every call ends here, and a few checks per buffer add up to a few percent of a step. A traced size (a SymInt
    under torch.export) is never pooled, and comparing it would put a guard on the traced graph's batch size."""
    return type(numel) is int and numel * element_size >= MIN_POOLED_BYTES


def take(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device: a view of a pooled buffer when a
    free one fits (the smallest that holds it, at most ``MAX_OVERSIZE`` times larger), fresh memory otherwise."""
    numel = 1
    for size in shape:
        numel *= size
    if not large_enough(numel, like.element_size()) or not poolable(like):
        return like.new_empty(shape)
    with _lock:
        buffers = _free.get(like.dtype, [])
        fitting = [i for i, buffer in enumerate(buffers) if numel <= buffer.numel() <= MAX_OVERSIZE * numel]
        if fitting:
            best = min(fitting, key=lambda i: buffers[i].numel())
            return buffers.pop(best)[:numel].view(shape)
    return _fresh_buffer(numel, like).view(shape)


def _fresh_buffer(numel: int, like: torch.Tensor) -> torch.Tensor:
    """New flat memory for the pool: in huge pages where a buffer spans at least one (``huge_pages``), from the
    allocator otherwise."""
    if numel * like.element_size() >= huge_pages.HUGE_PAGE_BYTES:
        buffer = huge_pages.empty(numel, like.dtype)
        if buffer is not None:
            return buffer
    return like.new_empty(numel)


def _whole_buffer(tensor: torch.Tensor) -> torch.Tensor:
    """The flat buffer that ``take`` handed out a view of (views keep their root in ``_base``)."""
    return tensor._base if tensor._base is not None else tensor.view(-1)


def give_back(buffer: torch.Tensor) -> None:
    """Return a tensor from ``take`` that the caller no longer uses (no view of it may live on)."""
    if not large_enough(buffer.numel(), buffer.element_size()) or not poolable(buffer):
        return
    whole = _whole_buffer(buffer)
    with _lock:
        buffers = _free.setdefault(whole.dtype, [])
        buffers.append(whole)
        del buffers[:-MAX_FREE_BUFFERS]  # the oldest beyond the bound


def give_back_when_freed(saved: torch.Tensor) -> None:
    """Return ``saved``'s buffer (from ``take``) to the pool once autograd has freed ``saved`` itself.

    The finalizer holds the whole buffer, not ``saved``, so it does not keep ``saved`` alive."""
    if large_enough(saved.numel(), saved.element_size()) and poolable(saved):
        weakref.finalize(saved, give_back, _whole_buffer(saved))


def pooled_bytes() -> int:
    """Memory held by free buffers (for tests and diagnostics)."""
    with _lock:
        return sum(buffer.numel() * buffer.element_size() for buffers in _free.values() for buffer in buffers)


def clear() -> None:
    """Drop every free buffer (their memory goes back to the allocator)."""
    with _lock:
        _free.clear()
