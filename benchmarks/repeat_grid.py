"""Run the benchmark grid several times and summarise each implementation's ratio to `native` over the runs.

Why: a grid run times each implementation's rounds as one block, and on a shared machine the speed drifts between
blocks, so one run's ratio is one sample. On this project's CPU machine `scratch_fast`'s `medium` training step
measured 0.87 to 1.29x `nn.LSTM`'s over 116 runs of the same code. Repeated runs give the spread, and how often a
target such as "at or below 1.0" held.

  python -m benchmarks.repeat_grid --runs 10 --out grid-runs --target medium.forward_backward=1.0
  python -m benchmarks.repeat_grid --runs 3 --out grid-runs -- --lstm-shapes toy,medium --lstm-threads 2
  python -m benchmarks.repeat_grid --summarise grid-runs --target toy.forward_backward=1.5

Each run is its own pytest process (`pytest benchmarks/test_lstm_passes.py --benchmark-only --lstm-devices
DEVICE`, then whatever follows `--`), and writes `run_NNN.json` into --out as it ends, so a stopped batch keeps the
runs it finished; more runs into the same folder add to them. A run that fails stops the batch; what it timed is
kept as `failed_NNN.json`, which summaries leave out. Do not run anything else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lstm_models.benchmarking.grid import PASSES, SHAPES
from lstm_models.benchmarking.result_files import ResultFileError, timed_passes
from lstm_models.benchmarking.suite_environment import suite_environment

REPOSITORY = Path(__file__).resolve().parent.parent
GRID_FILE = REPOSITORY / "benchmarks" / "test_lstm_passes.py"
RUN_FILE_PATTERN = "run_*.json"


@dataclass(frozen=True)
class Target:
    """A ratio to native that should hold in a run: at or below ``at_most`` for (shape, pass)."""
    shape: str
    pass_name: str
    at_most: float

    def __str__(self) -> str:
        return f"{self.shape} {self.pass_name} <= {self.at_most:g}"


class GridRunError(Exception):
    """A run that failed, or results that cannot answer the question asked of them; the message is one line."""


def parse_target(text: str) -> Target:
    """'medium.forward_backward=1.0' -> Target; argparse shows the ArgumentTypeError's message after '--target:'."""
    try:
        key, bound = text.split("=")
        shape, pass_name = key.split(".")
        at_most = float(bound)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"write SHAPE.PASS=MAX, for instance medium.forward_backward=1.0 (got {text!r})") from None
    if shape not in SHAPES or pass_name not in PASSES:
        raise argparse.ArgumentTypeError(
            f"SHAPE is one of {', '.join(SHAPES)} and PASS one of {', '.join(PASSES)} (got {text!r})")
    if not at_most > 0:
        raise argparse.ArgumentTypeError(f"MAX must be a ratio above 0 (got {text!r})")
    return Target(shape, pass_name, at_most)


def run_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(RUN_FILE_PATTERN))


def next_run_number(folder: Path) -> int:
    """One more than the highest run number in ``folder`` (run_007.json -> 8), so that no run is written over."""
    numbers = [int(path.stem.split("_")[1]) for path in folder.glob(RUN_FILE_PATTERN) if path.stem[4:].isdigit()]
    return max(numbers, default=0) + 1


def medians_of(path: Path) -> dict[tuple[str, str, str, str], float]:
    """{(device, pass, shape, impl): median seconds} of the grid's passes in one result file (a scaling sweep's,
    should the file hold them, are left out)."""
    try:
        rows = timed_passes(path)
    except ResultFileError as error:
        raise GridRunError(str(error)) from None
    return {(row["device"], row["pass"], row["shape"], row["impl"]): row["median_s"]
            for row in rows if row["sweep"] is None and row["shape"] in SHAPES}


def ratios_of(path: Path, impl: str, device: str) -> dict[tuple[str, str], tuple[float, float]]:
    """{(shape, pass): (impl's median over native's, native's median in ms)} in one run, for every (shape, pass)
    where both were timed."""
    medians = medians_of(path)
    ratios = {}
    for (run_device, pass_name, shape, run_impl), median in medians.items():
        native = medians.get((run_device, pass_name, shape, "native"))
        if run_device == device and run_impl == impl and native:
            ratios[(shape, pass_name)] = (median / native, native * 1e3)
    if not ratios:
        found = sorted({key[3] for key in medians if key[0] == device} - {"native"})
        raise GridRunError(f"{path}: no {impl} results beside native on {device}"
                           f" (implementations there: {', '.join(found) or 'none'})")
    return ratios


def summary(files: list[Path], impl: str, device: str, targets: list[Target]) -> str:
    """The spread of the ratios per (shape, pass) over the runs, and in how many runs each target held. Beside
    them, how far native's own median moved over the runs: the machine's drift, which the ratios ride on."""
    per_run = [ratios_of(path, impl, device) for path in files]  # {(shape, pass): (ratio, native ms)} each
    lines = [f"{len(files)} runs ({files[0].name} .. {files[-1].name}); {impl} / native on {device}, the ratio of "
             "medians in each run", "",
             f"{'shape':8} {'pass':17} {'min':>6} {'median':>6} {'max':>6} {'runs':>5}   native's median, ms"]
    keys = sorted({key for ratios in per_run for key in ratios},
                  key=lambda key: (list(SHAPES).index(key[0]), PASSES.index(key[1])))
    for shape, pass_name in keys:
        pairs = [ratios[(shape, pass_name)] for ratios in per_run if (shape, pass_name) in ratios]
        values, native_ms = [ratio for ratio, _ in pairs], [ms for _, ms in pairs]
        lines.append(f"{shape:8} {pass_name:17} {min(values):6.3f} {statistics.median(values):6.3f} "
                     f"{max(values):6.3f} {len(values):5d}   "
                     f"{_milliseconds(min(native_ms))} to {_milliseconds(max(native_ms))}")
    if targets:
        lines += ["", f"{'target':36} {'held':>7}  ratios, run by run"]
        held_in_all = [True] * len(per_run)
        for target in targets:
            key = (target.shape, target.pass_name)
            missing = [path.name for path, ratios in zip(files, per_run) if key not in ratios]
            if missing:
                raise GridRunError(f"--target {target.shape}.{target.pass_name}: not timed in {', '.join(missing)}")
            values = [ratios[key][0] for ratios in per_run]
            held = [value <= target.at_most for value in values]
            held_in_all = [both and this for both, this in zip(held_in_all, held)]
            lines.append(f"{str(target):36} {sum(held):3d}/{len(held):<3d}  " + " ".join(f"{v:.3f}" for v in values))
        lines.append(f"{'all targets in one run':36} {sum(held_in_all):3d}/{len(held_in_all):<3d}")
    return "\n".join(line.rstrip() for line in lines)


def _milliseconds(value: float) -> str:
    """Three significant digits, trailing zeros kept: 0.0496, 1.10, 70.0, 110."""
    return f"{value:#.3g}".rstrip(".")


def run_grid(out: Path, runs: int, device: str, pytest_args: list[str]) -> list[Path]:
    """``runs`` more grid runs, one pytest process each, numbered after the files already in ``out``."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    first = next_run_number(out)
    written = []
    for number in range(first, first + runs):
        path = out / f"run_{number:03d}.json"
        command = [sys.executable, "-m", "pytest", str(GRID_FILE), "--benchmark-only", f"--lstm-devices={device}",
                   "-p", "no:cacheprovider", "-q", f"--benchmark-json={path}", *pytest_args]
        started = time.monotonic()
        print(f"run {number - first + 1}/{runs} -> {path}", flush=True)
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY, env=suite_environment())
        if result.returncode != 0 or not path.exists():
            last_line = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
            kept = ""
            if path.exists():  # pytest-benchmark writes what was timed even when a test failed: kept, not summarised
                path.rename(path.with_name(f"failed_{number:03d}.json"))
                kept = f" (what it timed is in failed_{number:03d}.json)"
            raise GridRunError(f"run {number - first + 1}/{runs} failed (pytest exit {result.returncode}: "
                               f"{last_line[0]}){kept}; the {len(written)} finished before it are in {out}")
        written.append(path)
        print(f"run {number - first + 1}/{runs} done in {time.monotonic() - started:.0f} s", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own_args = argv[:argv.index("--")] if "--" in argv else argv
    paragraphs = __doc__.split("\n\n")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.repeat_grid", description=paragraphs[0],
                                     epilog="examples:\n" + paragraphs[2] + "\n\n" + paragraphs[3],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="grid runs to add (default 10)")
    parser.add_argument("--out", type=Path, help="folder for the runs' JSON files (created; existing runs are kept)")
    parser.add_argument("--summarise", type=Path, metavar="FOLDER",
                        help="run nothing: summarise the run_*.json files already in FOLDER")
    parser.add_argument("--impl", default="scratch_fast",
                        help="the implementation whose ratio to native is summarised (default scratch_fast)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="the grid's device (default cpu)")
    parser.add_argument("--target", type=parse_target, action="append", default=[], metavar="SHAPE.PASS=MAX",
                        help="a ratio that should hold in a run, at or below MAX; repeat for more")
    args = parser.parse_args(own_args)
    if (args.out is None) == (args.summarise is None):
        parser.error("--out: give --out FOLDER to run the grid, or --summarise FOLDER to summarise runs, not both")
    if args.runs < 1:
        parser.error(f"--runs: must be at least 1 (got {args.runs})")
    folder = args.out if args.out is not None else args.summarise
    status = 0
    try:
        if args.out is not None:
            run_grid(args.out, args.runs, args.device, pytest_args)
    except GridRunError as error:  # the runs finished before it are still summarised
        print(f"error: {error}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print(f"\nstopped; the runs finished before are in {folder}", file=sys.stderr)
        status = 130
    files = run_files(folder)
    if not files:
        if status == 0:
            print(f"error: --summarise: no {RUN_FILE_PATTERN} in {folder}", file=sys.stderr)
        return status or 1
    try:
        print(summary(files, args.impl, args.device, args.target))
    except GridRunError as error:
        print(f"error: {error}", file=sys.stderr)
        return status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
