"""Entry point ``benchmark``: run the pytest-benchmark suite and log its results as one MLflow run.

    python -m mlflow_project.benchmark --impls all --shapes toy,small --device cpu --threads 2 --scaling off

Runs ``pytest benchmarks --benchmark-only`` with the selection, reads its JSON with pandas, and logs: a metric per
(device, pass, shape, implementation) for the median time, its ratio to native and GFLOP/s; the raw JSON, a CSV
and a Markdown table; figures of times per shape (and the scaling sweeps when asked); tags for the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
from lstm_models import UnknownNamesError, select_names

from .comparison_run import log_new_params
from .config import ConfigError, parse_choice, parse_impls
from .environment import PROJECT_ROOT, environment_tags
from .train import refuse
from .tracking_store import limit_http_retries, tracking_store_problem

DEVICE_CHOICES = ("cpu", "cuda", "all")


def parse_shapes(text: str) -> list[str]:
    from benchmarks.grid import SHAPES

    try:
        return list(select_names(text, SHAPES))
    except UnknownNamesError:
        raise ConfigError("shapes", f"must be 'all' or comma-separated names from {', '.join(SHAPES)}", text) from None


def parse_threads(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError("threads", "must be 0 (torch's default) or a positive integer", text) from None
    if value < 0:
        raise ConfigError("threads", "must be 0 (torch's default) or a positive integer", text)
    return value


def parse_switch(parameter: str, text: str) -> bool:
    value = parse_choice(parameter, str(text).strip().lower(), ("on", "off", "true", "false", "1", "0"))
    return value in ("on", "true", "1")


def pytest_command(args, json_path: Path) -> list[str]:
    files = ["benchmarks/test_lstm_passes.py"] + (["benchmarks/test_scaling.py"] if args.scaling else [])
    devices = "cpu,cuda" if args.device == "all" else args.device
    command = [sys.executable, "-m", "pytest", *files, "--benchmark-only", f"--benchmark-json={json_path}",
               f"--lstm-impls={','.join(args.impls)}", f"--lstm-shapes={','.join(args.shapes)}",
               f"--lstm-devices={devices}", f"--lstm-threads={args.threads}", "-p", "no:cacheprovider",
               "-q", "-rs"]
    return command + (["--lstm-scaling"] if args.scaling else [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlflow_project.benchmark", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--impls", default="all", help="comma-separated implementations, or 'all'")
    parser.add_argument("--shapes", default="all", help="comma-separated from toy, small, medium, large, or 'all'")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or all (CUDA cases skip where it is absent)")
    parser.add_argument("--threads", default="0", help="torch CPU threads while timing; 0 keeps torch's default")
    parser.add_argument("--scaling", default="off", help="on: also time the sequence-length and hidden-size sweeps")
    parser.add_argument("--output-dir", default="", help="also write the results and figures to this folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_http_retries()
    try:
        args.impls = parse_impls(args.impls)
        args.shapes = parse_shapes(args.shapes)
        args.device = parse_choice("device", args.device, DEVICE_CHOICES)
        args.threads = parse_threads(args.threads)
        args.scaling = parse_switch("scaling", args.scaling)
        if args.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("device", "must be cpu or all on a machine without CUDA", "cuda")
    except ConfigError as error:
        return refuse(error)
    unreachable = tracking_store_problem()
    if unreachable:
        return refuse(unreachable, fail_run=False)  # the run cannot be reached to be marked
    from .benchmark_results import load_results, metrics_of, results_table, write_outputs

    with tempfile.TemporaryDirectory() as scratch, mlflow.start_run(run_name="benchmark") as run:
        folder = Path(scratch) / "benchmark"
        folder.mkdir()
        json_path = folder / "results.json"
        log_new_params({"impls": ",".join(args.impls), "shapes": ",".join(args.shapes), "device": args.device,
                        "threads": str(args.threads), "scaling": "on" if args.scaling else "off"})
        command = pytest_command(args, json_path)
        print("Running:", " ".join(command[1:]), flush=True)
        from benchmarks.suite_environment import suite_environment

        # The suite's output goes straight to the console: pytest's progress is the progress of this run.
        completed = subprocess.run(command, cwd=PROJECT_ROOT, env=suite_environment())
        if completed.returncode != 0 or not json_path.exists():
            mlflow.set_tag("lstm_bench.error", f"benchmark suite exited with status {completed.returncode}")
            mlflow.end_run(status="FAILED")
            print(f"error: the benchmark suite failed (exit status {completed.returncode})", file=sys.stderr)
            return 1
        frame = load_results(json_path)
        threads = str(int(frame["threads"].iloc[0])) if not frame.empty else str(args.threads)
        device = "cuda" if args.device in ("cuda", "all") and _cuda() else "cpu"
        mlflow.set_tags({**environment_tags(device), "lstm_bench.role": "benchmark",
                         "lstm_bench.torch_threads": threads})
        if frame.empty:
            print("No benchmark ran (every case skipped?); nothing to log.", file=sys.stderr)
        else:
            mlflow.log_metrics(metrics_of(frame))
            write_outputs(frame, folder)
            for device_name in sorted(frame.loc[frame["sweep"].isna(), "device"].unique()):
                print(f"\n{device_name}: median time (ratio to native)")
                print(results_table(frame, device_name).to_string(index=False))
        mlflow.log_artifacts(str(folder), artifact_path="benchmark")
        if args.output_dir:
            target = Path(args.output_dir)
            target.mkdir(parents=True, exist_ok=True)
            for path in folder.iterdir():
                (target / path.name).write_bytes(path.read_bytes())
        print(f"\nBenchmark run: {run.info.run_id} in {mlflow.get_tracking_uri()}")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
