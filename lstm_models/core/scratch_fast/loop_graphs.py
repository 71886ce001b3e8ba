"""``scratch_fast``'s time loops replayed as CUDA graphs, so that a CUDA call costs a few launches, not thousands.

Why: eagerly, a ``scratch_fast`` training step on CUDA issues about 1,700 small kernels, and the host's cost per
launch (about 10 µs) sets the pace, not the GPU (docs/scratch_fast.md, "CUDA"). A CUDA graph of a time loop is
launched as one unit. A graph replays fixed memory addresses, so each loop is bound to *static* buffers of its
own: a call copies its inputs in, replays, and copies out what must outlive the call. Those copies are a few
large kernels, cheap next to the loop's hundreds of small ones.

Rules that keep it correct:
- a loop is captured only after ``CAPTURE_AFTER`` calls with the same key (device, stream, dtype, sizes, variant):
  the first calls run eagerly and warm up lazily created state (cuBLAS handles, constants), and workloads whose
  shapes never repeat never pay for a capture;
- at most ``MAX_LOOPS`` loops are kept; beyond it the least recently used is dropped with its buffers and graph;
- nothing is captured or replayed while the caller's stream is itself capturing (a user capturing a whole training
  step gets the layer's kernels recorded into their own graph: ``recording``), while tracing, or once
  ``set_enabled(False)`` or the environment variable ``LSTM_BENCH_CUDA_GRAPHS=0`` has turned it off;
- static buffers are shared by every caller with the same key (the layers of a stack, later calls, other threads
  on the same stream): a call holds the loop's lock from writing its inputs until its results are copied out, and
  the stream in the key orders one call's kernels after another's.

On a device other than CUDA there are no graphs, and ``may_replay`` says no; a ``StaticLoop`` made there all the
same replays by running its loop again on its static buffers.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import torch

from .tracing import tracing

# Calls with one key before its loop is captured: the first runs eagerly (and is the warm-up), the second captures.
CAPTURE_AFTER = 2
# Captured loops kept, over all keys: a training step's forward and backward and an evaluation forward, for two
# shapes (a last, smaller batch, say). Each holds static buffers of a few times what one call saves for its
# backward (docs/scratch_fast.md, "CUDA").
MAX_LOOPS = 6
# Keys whose calls are counted before capture; a bound, so that never-repeating shapes cannot grow it.
MAX_COUNTED_KEYS = 256

_enabled = os.environ.get("LSTM_BENCH_CUDA_GRAPHS", "1") != "0"
_lock = threading.Lock()
_loops: OrderedDict[Hashable, "StaticLoop"] = OrderedDict()  # least recently used first
_calls: OrderedDict[Hashable, int] = OrderedDict()
_side_streams: dict[torch.device, "torch.cuda.Stream"] = {}


def _side_stream(device: torch.device) -> "torch.cuda.Stream":
    """One warm-up and capture stream per device, shared by every loop: cuBLAS keeps a workspace (tens of MiB) per
    handle and stream for the life of the process, so a new stream per loop would leave one behind each time."""
    with _lock:
        stream = _side_streams.get(device)
        if stream is None:
            stream = _side_streams[device] = torch.cuda.Stream(device)
        return stream


class StaticLoop:
    """A time loop bound to buffers of its own, captured once and replayed per call.

    Its buffers (whatever ``run`` reads and writes, made by the caller's ``allocate``) are reached only inside
    ``with loop as buffers:``, which holds the loop's lock: a caller writes its inputs, calls ``replay`` and copies
    out (or launches the kernels that read) its results within it. Threads that share a stream would otherwise
    interleave their copies and replays and get each other's results.
    """

    def __init__(self, buffers: Any, run: Callable[[Any], None], device: torch.device):
        self._buffers = buffers
        self._lock = threading.Lock()
        self._run = run
        self._graph = None
        if device.type != "cuda":
            return
        # Warm-up on a side stream, as PyTorch's CUDA-graph recipe asks, then the capture on the same stream.
        # thread_local: the capture may happen in autograd's backward thread while the main thread waits.
        side = _side_stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            run(buffers)
        torch.cuda.current_stream(device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph, stream=side, capture_error_mode="thread_local"):
            run(buffers)

    def __enter__(self) -> Any:
        self._lock.acquire()
        return self._buffers

    def __exit__(self, *exc_info) -> None:
        self._lock.release()

    def replay(self) -> None:
        """Run the loop on its buffers (call inside ``with loop as buffers:``)."""
        if self._graph is None:
            self._run(self._buffers)  # a device without graphs: the same loop, on the same buffers
        else:
            self._graph.replay()


def set_enabled(enabled: bool) -> None:
    """Turn replaying on or off for the whole process (it starts on unless ``LSTM_BENCH_CUDA_GRAPHS=0``)."""
    global _enabled
    _enabled = enabled
    if not enabled:
        clear()


def enabled() -> bool:
    return _enabled


def clear() -> None:
    """Drop every captured loop and call count (their buffers and graphs' memory go back to the allocator)."""
    with _lock:
        _loops.clear()
        _calls.clear()


def captured_count() -> int:
    """How many loops are captured now (for tests and diagnostics)."""
    with _lock:
        return len(_loops)


def may_replay(like: torch.Tensor) -> bool:
    """Whether a loop on ``like``'s device may be replayed at all. Cheap, and called first: at the tutorial's sizes
    on CPU every microsecond of a call shows."""
    return _enabled and like.is_cuda


def recording(like: torch.Tensor) -> bool:
    """Whether the kernels launched for ``like`` now are being recorded into a caller's own CUDA graph (a whole
    training step captured with ``torch.cuda.graph``, say) rather than run: then nothing is replayed here, and the
    layer's kernels become part of the caller's graph."""
    return like.is_cuda and torch.cuda.is_current_stream_capturing()


def _may_replay_now(like: torch.Tensor) -> bool:
    if not may_replay(like):
        return False
    if tracing():
        return False
    return not recording(like)


def loop_for(name: str, like: torch.Tensor, sizes: tuple, allocate: Callable[[], Any],
             run: Callable[[Any], None]) -> StaticLoop | None:
    """The captured loop for this call, or None where the caller should run its loop eagerly.

    ``name`` and ``sizes`` identify the loop (with ``like``'s dtype, device and current stream); ``allocate()`` makes
    its static buffers and ``run(buffers)`` is the loop itself, called at capture time only."""
    if not _may_replay_now(like):
        return None
    stream = torch.cuda.current_stream(like.device).cuda_stream if like.is_cuda else 0
    key = (name, like.dtype, like.device, stream, sizes)
    with _lock:
        loop = _loops.get(key)
        if loop is not None:
            _loops.move_to_end(key)
            return loop
        calls = _calls.pop(key, 0) + 1
        if calls < CAPTURE_AFTER:
            _calls[key] = calls
            while len(_calls) > MAX_COUNTED_KEYS:
                _calls.popitem(last=False)
            return None
    # Capture outside the lock: it synchronizes the device and may take milliseconds. Buffers are made outside
    # inference mode, so that later calls outside it may write them, and outside autograd.
    with torch.inference_mode(False), torch.no_grad():
        loop = StaticLoop(allocate(), run, like.device)
    with _lock:
        _loops[key] = loop
        while len(_loops) > MAX_LOOPS:
            _loops.popitem(last=False)
    return loop
