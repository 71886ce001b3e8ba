"""``scratch_fast``'s CPU time loops as compiled code: each step's element-wise work in one fused pass.

Why: in plain PyTorch a step is one matrix product and a dozen element-wise kernels, each a Python call and a pass
over memory; at the tutorial's sizes Python's cost per call dominates, at the benchmark's larger ones the separate
passes do. ``csrc/fused_steps.cpp`` runs the whole loop in C++: per step the recurrent product on PyTorch's BLAS
and one pass over the (B, H) elements that computes the gates, the cell and hidden states (forward), or the gate
gradients and dc (backward). Design note, docs/scratch_fast.md, "Fused steps".

Built just in time by ``torch.utils.cpp_extension`` on first use, and cached (``TORCH_EXTENSIONS_DIR``, by default
~/.cache/torch_extensions), under a name that carries the torch version and the CPU's vector extension, so that a
cache shared by other machines or other torch versions never loads a build made for them. Not at install time:
building there needs torch inside pip's isolated build environment, a second, several-GB download of it.

Where it cannot be used (no compiler, a failed build, ``LSTM_BENCH_FUSED_STEPS=0``), the layer runs its plain
PyTorch loops, after one warning that says why. ``path()`` names the path taken, for run tags and benchmark records.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from pathlib import Path

import torch

from .tracing import tracing

SOURCE = Path(__file__).with_name("csrc") / "fused_steps.cpp"
DTYPES = (torch.float32, torch.float64)

# Compile flags per ATen CPU capability: the vector extension that the machine's own ATen kernels use. -ffast-math
# lets GCC call glibc's vectorised exp and tanh (libmvec) inside the element-wise loops; it is a compile flag only:
# linked with it, the library would switch the whole process to flushing subnormal floats to zero.
_VECTOR_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
    "AVX2": ["-mavx2", "-mfma"],
}
_COMMON_FLAGS = ["-O3", "-ffast-math", "-fopenmp-simd"]

_lock = threading.Lock()
# Decided once per process: "ops", or "problem" (why not). Operators register once per process, and loading a
# rebuilt library beside the first would abort it.
_loaded: dict[str, object] = {}
_enabled = os.environ.get("LSTM_BENCH_FUSED_STEPS", "1") != "0"


def set_enabled(enabled: bool) -> None:
    """Turn the fused loops on or off for the whole process (on unless ``LSTM_BENCH_FUSED_STEPS=0``), which lets one
    checkout time and test both paths."""
    global _enabled
    _enabled = enabled


def _build_name(capability: str) -> str:
    return re.sub(r"\W", "_", f"lstm_bench_fused_steps_{torch.__version__}_{capability}")


def _load():
    """The compiled operators (``torch.ops.lstm_bench_fused``), built on first use; raises when that fails."""
    from torch.utils import cpp_extension

    _put_ninja_on_path()
    capability = torch.backends.cpu.get_cpu_capability()
    cpp_extension.load(name=_build_name(capability), sources=[str(SOURCE)], is_python_module=False,
                       extra_cflags=_COMMON_FLAGS + _VECTOR_FLAGS.get(capability, []), verbose=False)
    return torch.ops.lstm_bench_fused


def _put_ninja_on_path() -> None:
    """torch's builder runs ``ninja`` from PATH; the ninja package installed with this one may not be on it (a
    virtual environment's interpreter run without activating it)."""
    try:
        import ninja
    except ImportError:
        return
    directory = ninja.BIN_DIR
    if directory not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([directory, os.environ.get("PATH", "")])


def ops():
    """The compiled operators, or None where the plain loops must run: turned off, or the build failed (the first
    such call warns, once per process)."""
    if not _enabled:
        return None
    if not _loaded:
        with _lock:
            if not _loaded:
                try:
                    _loaded["ops"] = _load()
                except Exception as error:  # no compiler, a failed build, a missing header: all end the same way
                    _loaded["problem"] = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"
                    warnings.warn(f"scratch_fast: the fused C++ time loops are unavailable ({_loaded['problem']}); "
                                  "running the plain PyTorch loops instead", RuntimeWarning, stacklevel=2)
    return _loaded.get("ops")


def problem() -> str | None:
    """Why the fused loops do not run here (loading them first, if not yet tried); None when they do."""
    if not _enabled:
        return "turned off (LSTM_BENCH_FUSED_STEPS=0 or fused_steps.set_enabled(False))"
    ops()
    return _loaded.get("problem")


def path() -> str:
    """``"fused"`` or ``"plain"``: the loops scratch_fast runs on CPU in this process."""
    return "fused" if ops() is not None else "plain"


def used_for(like: torch.Tensor) -> bool:
    """Whether a layer call on ``like`` runs the fused loops: CPU, float32 or float64, not while tracing (a traced
    program keeps plain operations that every device runs), and the operators loaded."""
    return like.device.type == "cpu" and like.dtype in DTYPES and not tracing() and ops() is not None
