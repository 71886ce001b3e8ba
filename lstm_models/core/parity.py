"""Is it the same function? Compare any registered implementation with ``torch.nn.LSTM`` on shared weights.

The recipe follows the equivalence tests DESIGN.md asks for: copy ``nn.LSTM``'s state dict in, run both on the
same seeded input (and initial state), backpropagate one seeded upstream gradient through output, ``h_n`` and
``c_n``, and report the largest absolute difference of every output and every gradient. The tests assert on these
numbers; ``python -m lstm_models.core.parity`` prints them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn

from .factory import lstm_inputs
from .registry import DEFAULT_SELECTION, build_lstm, resolve, takes_sizes
from .statquest import StatQuestLSTM, statquest_to_lstm_state


@dataclass(frozen=True)
class ParityCase:
    name: str
    seq_len: int
    batch: int | None  # None: unbatched input (T, I)
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    initial_state: bool = False

    def lstm_kwargs(self) -> dict:
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                    bias=self.bias, batch_first=self.batch_first)


# A spread of shapes: the edge cases of nn.LSTM's contract, then the same at the tutorial's sizes (1/1/1),
# which is all the statquest unit takes.
PARITY_CASES = (
    ParityCase("one_step", seq_len=1, batch=3, input_size=4, hidden_size=5),
    ParityCase("batch_of_one", seq_len=6, batch=1, input_size=3, hidden_size=4),
    ParityCase("unbatched", seq_len=5, batch=None, input_size=3, hidden_size=4),
    ParityCase("unbatched_state_layers", seq_len=5, batch=None, input_size=3, hidden_size=4, num_layers=2,
               initial_state=True),
    ParityCase("three_layers", seq_len=7, batch=4, input_size=3, hidden_size=6, num_layers=3),
    ParityCase("batch_first", seq_len=6, batch=3, input_size=4, hidden_size=5, batch_first=True),
    ParityCase("initial_state", seq_len=6, batch=3, input_size=4, hidden_size=5, num_layers=2, initial_state=True),
    ParityCase("no_bias", seq_len=6, batch=3, input_size=4, hidden_size=5, num_layers=2, bias=False),
    ParityCase("long_sequence", seq_len=60, batch=2, input_size=2, hidden_size=3),
    ParityCase("toy", seq_len=4, batch=2, input_size=1, hidden_size=1),
    ParityCase("toy_one_step", seq_len=1, batch=2, input_size=1, hidden_size=1),
    ParityCase("toy_unbatched_state", seq_len=4, batch=None, input_size=1, hidden_size=1, initial_state=True),
    ParityCase("toy_batch_first_state", seq_len=4, batch=3, input_size=1, hidden_size=1, batch_first=True,
               initial_state=True),
)


def fits(impl: str, case: ParityCase) -> bool:
    """Whether ``impl`` accepts this case's sizes and options (the statquest unit is 1/1/1 with bias only)."""
    sizes_fit = takes_sizes(impl, input_size=case.input_size, hidden_size=case.hidden_size, num_layers=case.num_layers)
    return sizes_fit and (case.bias or resolve(impl).builder is not StatQuestLSTM)


def lstm_layout_grads(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's parameter gradients under nn.LSTM's names."""
    grads = {name: param.grad for name, param in module.named_parameters()}
    if isinstance(module, StatQuestLSTM):
        grads = statquest_to_lstm_state(grads)
        # One bias per gate stands for nn.LSTM's two, and both get the same gradient (both are added to the gate).
        grads["bias_hh_l0"] = grads["bias_ih_l0"]
    return grads


def run_case(module: nn.Module, case: ParityCase, dtype: torch.dtype, device: str, seed: int) -> dict[str, torch.Tensor]:
    """One forward and backward of ``module`` on the case's inputs drawn from ``seed``: outputs and gradients by name
    (the gradients accumulate onto any the module already holds)."""
    batch = case.batch or 1
    x, (h0, c0) = lstm_inputs(case.seq_len, batch, case.input_size, case.hidden_size, case.num_layers,
                              seed=seed, dtype=dtype, device=device)  # (T, B, I), (L, B, H)
    if case.batch is None:
        x, h0, c0 = x[:, 0], h0[:, 0], c0[:, 0]  # (T, I), (L, H)
    elif case.batch_first:
        x = x.transpose(0, 1)  # (B, T, I)
    x, h0, c0 = (t.contiguous().requires_grad_() for t in (x, h0, c0))
    output, (h_n, c_n) = module(x, (h0, c0)) if case.initial_state else module(x)
    generator = torch.Generator().manual_seed(seed + 1)
    upstream = [torch.randn(t.shape, generator=generator, dtype=dtype).to(device) for t in (output, h_n, c_n)]
    loss = sum((t * g).sum() for t, g in zip((output, h_n, c_n), upstream))
    loss.backward()
    result = {"output": output.detach(), "h_n": h_n.detach(), "c_n": c_n.detach(), "grad_input": x.grad}
    if case.initial_state:
        result.update(grad_h0=h0.grad, grad_c0=c0.grad)
    for name, grad in lstm_layout_grads(module).items():
        result[f"grad_{name}"] = grad
    return result


def build_like_native(native: nn.Module, impl: str, **lstm_kwargs) -> nn.Module:
    """The implementation spec ``impl`` holding ``native``'s weights, in its dtype and on its device."""
    weight = next(native.parameters())
    candidate = build_lstm(impl, **lstm_kwargs, dtype=weight.dtype, device=weight.device)
    candidate.load_state_dict(native.state_dict())
    return candidate


def compare_with_native(impl: str, case: ParityCase, dtype: torch.dtype = torch.float64, device: str = "cpu",
                        seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Run ``impl`` and ``nn.LSTM`` on the same weights and inputs; return both results, keyed alike."""
    torch.manual_seed(seed)
    native = build_lstm("native", **case.lstm_kwargs(), dtype=dtype, device=device)
    candidate = build_like_native(native, impl, **case.lstm_kwargs())
    return run_case(candidate, case, dtype, device, seed), run_case(native, case, dtype, device, seed)


def max_differences(impl: str, case: ParityCase, **kwargs) -> dict[str, float]:  # kwargs: compare_with_native's
    """Largest absolute difference per output and gradient, ``impl`` against nn.LSTM."""
    got, want = compare_with_native(impl, case, **kwargs)
    return {key: float((got[key] - want[key]).abs().max()) for key in want}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the largest difference between each implementation and "
                                                 "nn.LSTM over the parity cases, in float64 (or float32).")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    print(f"{'implementation':<14} {'case':<24} {'outputs':>10} {'gradients':>10}")
    for impl in DEFAULT_SELECTION:
        if impl == "native":
            continue
        for case in PARITY_CASES:
            if not fits(impl, case):
                continue
            diffs = max_differences(impl, case, dtype=dtype, device=args.device)
            outputs = max(v for k, v in diffs.items() if not k.startswith("grad_"))
            grads = max(v for k, v in diffs.items() if k.startswith("grad_"))
            print(f"{impl:<14} {case.name:<24} {outputs:>10.2e} {grads:>10.2e}")


if __name__ == "__main__":
    main()
