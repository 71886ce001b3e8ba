"""The benchmark grid's named shapes and the work each pass does, in floating-point operations.

FLOPs count the matrix products only (they are the work; the element-wise gate math is O(1/H) of it):
one layer's forward does the input projection, 2·T·B·I·4H, and the recurrent product, 2·T·B·H·4H. The backward
does twice the forward's products (one for the gradient of the inputs, one for the weights), as in PyTorch's
benchmarks/fastrnns accounting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core.registry import takes_sizes


@dataclass(frozen=True)
class Shape:
    name: str
    seq_len: int
    batch: int
    input_size: int
    hidden_size: int
    num_layers: int = 1

    def sizes(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "name"}

    def forward_flops(self) -> int:
        flops = 0
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size
            flops += 2 * self.seq_len * self.batch * 4 * self.hidden_size * (layer_input + self.hidden_size)
        return flops

    def flops(self, pass_name: str) -> int:
        return {"forward": 1, "backward": 2, "forward_backward": 3}[pass_name] * self.forward_flops()


SHAPES = {shape.name: shape for shape in (
    Shape("toy", seq_len=4, batch=1, input_size=1, hidden_size=1),  # the tutorial's
    Shape("small", seq_len=32, batch=16, input_size=32, hidden_size=64),
    Shape("medium", seq_len=100, batch=64, input_size=256, hidden_size=256),
    Shape("large", seq_len=100, batch=64, input_size=512, hidden_size=512),  # PyTorch's fastrnns default
)}
PASSES = ("forward", "backward", "forward_backward")
DEVICES = ("cpu", "cuda")

# Rounds per shape: enough for a stable median, few enough that the default CPU grid stays within minutes.
ROUNDS = {"toy": 200, "small": 50, "medium": 10, "large": 5}
WARMUP_ROUNDS = {"toy": 20, "small": 5, "medium": 2, "large": 1}
# On CUDA a round takes milliseconds, and eager times follow the host's launches, which jitter: more rounds cost
# little. At least three warm-up rounds there, so that scratch_fast's loops are captured as CUDA graphs (on a
# shape's second call, lstm_models.core.scratch_fast.loop_graphs) before the timing starts.
CUDA_MIN_ROUNDS, CUDA_MIN_WARMUP_ROUNDS = 30, 3


def rounds_for(shape_name: str, device: str) -> tuple[int, int]:
    """(timed rounds, warm-up rounds) of one grid benchmark."""
    rounds, warmup = ROUNDS[shape_name], WARMUP_ROUNDS[shape_name]
    if device == "cuda":
        return max(rounds, CUDA_MIN_ROUNDS), max(warmup, CUDA_MIN_WARMUP_ROUNDS)
    return rounds, warmup


# Scaling sweeps (CPU, forward_backward): one size varies, the rest stay fixed.
SCALING_SEQ_LENS = (16, 32, 64, 128, 256, 512)  # at B=16, I=H=256
SCALING_HIDDEN_SIZES = (32, 64, 128, 256, 512, 1024)  # at T=32, B=16, I=H
SCALING_ROUNDS, SCALING_WARMUP_ROUNDS = 10, 2


def scaling_shapes() -> list[tuple[str, int, Shape]]:
    """(sweep, value, shape) for both sweeps."""
    points = [("seq_len", t, Shape(f"seq_len={t}", seq_len=t, batch=16, input_size=256, hidden_size=256))
              for t in SCALING_SEQ_LENS]
    points += [("hidden_size", h, Shape(f"hidden_size={h}", seq_len=32, batch=16, input_size=h, hidden_size=h))
               for h in SCALING_HIDDEN_SIZES]
    return points


def fits(impl: str, shape: Shape) -> bool:
    """Whether the implementation takes the shape's sizes (statquest, the tutorial's 1x1 unit, only toy)."""
    return takes_sizes(impl, input_size=shape.input_size, hidden_size=shape.hidden_size, num_layers=shape.num_layers)
