"""Is it nn.LSTM's function? Conformance of any implementation spec, check by check.

    python -m lstm_models.check scratch mine=my_package.my_lstm:MyLSTM

Each check is a row: its result and the largest difference, or the reason. The checks: the constructor; the
parameter names and shapes (nn.LSTM's state dict loads); whether the same seed gives the same initial weights
(reported, not required); float64 outputs, final state and every gradient (input, h0, c0, each parameter) over
the parity shapes; float32; CUDA where there is a GPU; and ``torch.export`` (whether its model can be logged as
pt2). A case the implementation refuses to build or run is *unsupported*, with its error; it is not a failure.

Exit status: 0 when every spec is nn.LSTM's function on every case it supports; 1 when an output or a gradient
differs beyond float64 rounding (or nn.LSTM's state dict does not load); 2 when a spec cannot be imported or built.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass

import torch
from tabulate import tabulate
from torch import nn

from .core import IMPLEMENTATIONS, ImplementationUnavailable, SpecError, build_lstm, label_of, lstm_state_dict
from .core.parity import PARITY_CASES, ParityCase, compare_with_native
from .core.registry import takes_sizes

PASS, FAIL, UNSUPPORTED, INFO, SKIPPED = "pass", "FAIL", "unsupported", "info", "skipped"
# Beyond float64 rounding: sums over steps and batch lose a few of float64's 16 digits, never 4.
FLOAT64_TOLERANCE = dict(rtol=1e-9, atol=1e-12)
FLOAT32_TOLERANCE = dict(rtol=1e-4, atol=1e-5)
# The parity shapes the check runs: unbatched, batch_first, (h0, c0), several layers, bias=False, and the
# tutorial's sizes, which are all some implementations take.
CASE_NAMES = ("unbatched_state_layers", "batch_first", "initial_state", "three_layers", "no_bias", "toy",
              "toy_unbatched_state")
CASES = tuple(case for case in PARITY_CASES if case.name in CASE_NAMES)
# The constructor's sizes, or the tutorial's for an implementation that takes no others.
SIZES, UNIT = dict(input_size=3, hidden_size=5, num_layers=2), dict(input_size=1, hidden_size=1, num_layers=1)


@dataclass(frozen=True)
class Check:
    name: str
    result: str
    detail: str


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _sizes(spec: str) -> dict:
    return SIZES if takes_sizes(spec, **SIZES) else UNIT


def constructor(spec: str) -> tuple[Check, nn.Module]:
    """The module built at sizes it takes; SpecError when it cannot be built at all (exit status 2), and
    ImplementationUnavailable when it cannot run on this machine."""
    try:
        module = build_lstm(spec, **_sizes(spec))
    except (SpecError, ImplementationUnavailable):
        raise
    except Exception as error:
        raise SpecError(spec, f"cannot be built ({_first_line(error)})") from None
    shown = ", ".join(f"{key}={value}" for key, value in _sizes(spec).items())
    return Check("constructor", PASS, f"{type(module).__name__}({shown})"), module


def state_dict_loads(spec: str, module: nn.Module) -> Check:
    native = nn.LSTM(**_sizes(spec))
    try:
        module.load_state_dict(native.state_dict())
    except Exception as error:
        return Check("parameter names and shapes", FAIL, f"nn.LSTM's state dict does not load: {_first_line(error)}")
    return Check("parameter names and shapes", PASS, f"nn.LSTM's state dict loads ({len(native.state_dict())} tensors)")


def same_start(spec: str) -> Check:
    torch.manual_seed(0)
    native = nn.LSTM(**_sizes(spec))
    torch.manual_seed(0)
    module = build_lstm(spec, **_sizes(spec))
    mine, want = lstm_state_dict(module), native.state_dict()
    if set(mine) != set(want) or any(mine[key].shape != want[key].shape for key in want):
        return Check("same initial weights under one seed", INFO, "not comparable: other parameter names or shapes")
    largest = max(float((mine[key].detach() - want[key]).abs().max()) for key in want)
    return Check("same initial weights under one seed", INFO,
                 "bit-identical to nn.LSTM's" if largest == 0 else f"no (largest difference {largest:.2e})")


def _compare(spec: str, case: ParityCase, dtype: torch.dtype, device: str, tolerance: dict, name: str) -> Check:
    try:
        got, want = compare_with_native(spec, case, dtype=dtype, device=device)
    except Exception as error:  # refused or failed to run: a case it does not support
        return Check(name, UNSUPPORTED, _first_line(error))
    missing = [key for key in want if got.get(key) is None]
    if missing:
        return Check(name, FAIL, f"no {', '.join(missing)}")
    worst = {key: float((got[key] - want[key]).abs().max()) for key in want}
    outside = [key for key in want if not torch.allclose(got[key], want[key], **tolerance)]
    outputs = max(value for key, value in worst.items() if not key.startswith("grad_"))
    gradients = max(value for key, value in worst.items() if key.startswith("grad_"))
    detail = f"largest difference: outputs {outputs:.1e}, gradients {gradients:.1e}"
    if outside:
        shown = ", ".join(outside[:3]) + (f" and {len(outside) - 3} more" if len(outside) > 3 else "")
        return Check(name, FAIL, f"{detail}; beyond {str(dtype).removeprefix('torch.')} rounding: {shown}")
    return Check(name, PASS, detail)


def float64_cases(spec: str) -> list[Check]:
    return [_compare(spec, case, torch.float64, "cpu", FLOAT64_TOLERANCE, f"float64 {case.name}") for case in CASES]


def _sample_case(spec: str) -> ParityCase:
    """The one case the float32 and CUDA checks run: with an initial state, or the tutorial's at its sizes."""
    return next(case for case in CASES if case.name == ("initial_state" if _sizes(spec) is SIZES else "toy"))


def float32_case(spec: str) -> Check:
    case = _sample_case(spec)
    return _compare(spec, case, torch.float32, "cpu", FLOAT32_TOLERANCE, f"float32 {case.name}")


def cuda_case(spec: str) -> Check:
    if not torch.cuda.is_available():
        return Check("cuda float64", SKIPPED, "no CUDA device here")
    case = _sample_case(spec)
    return _compare(spec, case, torch.float64, "cuda", FLOAT64_TOLERANCE, f"cuda float64 {case.name}")


def exports(spec: str) -> Check:
    sizes = _sizes(spec)
    try:
        module = build_lstm(spec, **sizes).eval()
        x = torch.randn(4, 2, sizes["input_size"])  # (T, B, I)
        with warnings.catch_warnings():
            # nn.LSTM keeps a flat copy of its weights that torch.export warns about; the program is checked below.
            warnings.filterwarnings("ignore", message=".*_flat_weights.*were assigned during export.*")
            program = torch.export.export(module, (x,))
        torch.testing.assert_close(program.module()(x)[0], module(x)[0])
    except Exception as error:
        return Check("torch.export (pt2 model)", UNSUPPORTED, _first_line(error))
    return Check("torch.export (pt2 model)", PASS, "exports, and the program gives the module's outputs")


def conformance(spec: str) -> list[Check]:
    """Every check of ``spec``, in order; SpecError when it cannot be imported or built."""
    built, module = constructor(spec)
    loads = state_dict_loads(spec, module)
    if loads.result == FAIL:
        return [built, loads]  # the comparisons below copy nn.LSTM's weights in
    return [built, loads, same_start(spec), *float64_cases(spec), float32_case(spec), cuda_case(spec), exports(spec)]


def same_function(checks: list[Check]) -> bool:
    return all(check.result != FAIL for check in checks)


def first_failure(checks: list[Check]) -> Check | None:
    return next((check for check in checks if check.result == FAIL), None)


def verdict(checks: list[Check]) -> str:
    return "passed" if same_function(checks) else "failed"


def table(checks: list[Check], tablefmt: str = "simple") -> str:
    return tabulate([(check.name, check.result, check.detail) for check in checks],
                    headers=("check", "result", "largest difference or reason"), tablefmt=tablefmt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_models.check", description=__doc__.split("\n\n")[0],
        epilog=f"Registered names: {', '.join(IMPLEMENTATIONS)}. A spec is a registered name or "
               "package.module:Attribute (a class or factory with nn.LSTM's constructor arguments), either "
               "after 'label=' to name it.")
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="implementations to check")
    args = parser.parse_args(argv)
    status = 0
    for spec in args.specs:
        try:
            checks = conformance(spec)
        except (SpecError, ImplementationUnavailable) as error:
            print(f"error: SPEC {error}", file=sys.stderr)
            status = max(status, 2)
            continue
        same = same_function(checks)
        print(f"\n{label_of(spec)} ({spec}): " + ("nn.LSTM's function on every case it supports" if same
                                                   else "differs from nn.LSTM"))
        print(table(checks))
        status = max(status, 0 if same else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
