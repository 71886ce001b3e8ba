"""Entry point ``benchmark``: run the pytest-benchmark suite under each process profile, log the results as one run.

    python -m mlflow_project.benchmark --impls all --shapes toy,small --device cpu --threads 2 --profile all

Runs ``pytest benchmarks --benchmark-only`` with the selection, reads its JSON with pandas, and logs: a metric per
(device, pass, shape, implementation) for the median time, its ratio to native and GFLOP/s; the raw JSON, a CSV
and a Markdown table; figures of times per shape (and the scaling sweeps when asked); tags for the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow

from lstm_models.benchmarking.profiles import PROFILES, SETTINGS, environment

from .cli import (ConfigError, add_arguments, as_params, experiment_parameter, implementations_parameter, names_from,
                  non_negative_int, one_of, parameter, parse_config, raw_arguments, refuse, refuse_if_refused, switch)
from .comparison_run import log_new_params
from .environment import environment_tags
from .experiment import chosen_experiment_id, run_address, start_parent_run
from .orphans import process_tags
from .tracking_store import limit_http_retries, tracking_store_problem

DEVICE_CHOICES = ("cpu", "cuda", "all")


def shape_names() -> tuple[str, ...]:
    from lstm_models.benchmarking.grid import SHAPES

    return tuple(SHAPES)


@dataclass(frozen=True)
class BenchmarkConfig:
    impls: tuple[str, ...] = implementations_parameter()
    shapes: tuple[str, ...] = parameter("all", "comma-separated from toy, small, medium, large, or 'all'",
                                        names_from(shape_names), allowed="comma-separated from `toy`, `small`, "
                                                                         "`medium`, `large`, or `all`")
    device: str = parameter("cpu", "cpu, cuda or all (CUDA cases skip where it is absent)", one_of(*DEVICE_CHOICES),
                            allowed="`cpu`, `cuda` or `all` (CUDA cases skip where it is absent)")
    threads: int = parameter("0", "torch CPU threads while timing; 0 keeps torch's default", non_negative_int,
                             allowed="torch CPU threads while timing; `0` keeps torch's default")
    scaling: bool = parameter("off", "on: also time the sequence-length and hidden-size sweeps", switch,
                              allowed="`on`: also time the sequence-length and hidden-size sweeps")
    profile: tuple[str, ...] = parameter(
        "all", "process profiles, each timed in a fresh process: default (the environment as it is), tuned (PyTorch's "
               "allocator in huge pages, glibc keeping freed memory), or all", names_from(lambda: PROFILES),
        allowed="`default` (the environment as it is), `tuned` (the settings PyTorch's CPU guidance recommends, "
                "lstm_models/benchmarking/profiles.py), or `all`: each in a fresh process")
    experiment: str = experiment_parameter()


def suite_folder() -> Path:
    """The installed benchmark suite (the ``benchmarks`` package), wherever this command runs from."""
    spec = importlib.util.find_spec("benchmarks")
    return Path(spec.origin).parent


def pytest_command(config: BenchmarkConfig, profile: str, json_path: Path) -> list[str]:
    suite = suite_folder()
    files = [suite / "test_lstm_passes.py"] + ([suite / "test_scaling.py"] if config.scaling else [])
    devices = "cpu,cuda" if config.device == "all" else config.device
    # -p: the suite's options come from its plugin, which the project's root conftest loads only in a checkout.
    command = [sys.executable, "-m", "pytest", *map(str, files), "-p", "benchmarks.plugin", "--benchmark-only",
               f"--benchmark-json={json_path}", f"--lstm-impls={','.join(config.impls)}",
               f"--lstm-shapes={','.join(config.shapes)}", f"--lstm-devices={devices}",
               f"--lstm-threads={config.threads}", f"--lstm-profile={profile}", "-p", "no:cacheprovider", "-q", "-rs",
               f"--rootdir={suite}", "-c", os.devnull]
    return command + (["--lstm-scaling"] if config.scaling else [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlflow_project.benchmark", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser, BenchmarkConfig)
    parser.add_argument("--output-dir", default="", help="also write the results and figures to this folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_http_retries()
    try:
        config = parse_config(BenchmarkConfig, raw_arguments(args, BenchmarkConfig))
        if config.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("device", "must be cpu or all on a machine without CUDA", "cuda")
    except ConfigError as error:
        return refuse(error)
    unreachable = tracking_store_problem()
    if unreachable:
        return refuse(unreachable, fail_run=False)  # the run cannot be reached to be marked
    try:
        return run_benchmark(config, args.output_dir)
    except mlflow.exceptions.MlflowException as error:
        return refuse_if_refused(error)


def run_benchmark(config: BenchmarkConfig, output_dir: str) -> int:
    """Run the suite and log its results as one MLflow run; 1 if the suite fails."""
    from .benchmark_results import load_results, metrics_of, results_table, write_outputs

    experiment_id = chosen_experiment_id(config.experiment)
    with tempfile.TemporaryDirectory() as scratch, start_parent_run(experiment_id, "benchmark") as run:
        folder = Path(scratch) / "benchmark"
        folder.mkdir()
        log_new_params(as_params(config))
        mlflow.set_tags(process_tags())  # from the start: a hard kill during the suite leaves an orphan to find
        json_paths = []
        for profile in config.profile:
            json_paths.append(folder / f"results_{profile}.json")
            status = run_suite(config, profile, json_paths[-1])
            if status != 0:
                mlflow.set_tag("lstm_bench.error", f"benchmark suite ({profile}) exited with status {status}")
                mlflow.end_run(status="FAILED")
                print(f"error: the benchmark suite failed under profile {profile} (exit status {status})",
                      file=sys.stderr)
                return 1
        mlflow.set_tags({f"lstm_bench.profile.{profile}.{name}": value or "(unset)"
                         for profile in config.profile
                         for name, value in {**dict.fromkeys(SETTINGS, ""), **PROFILES[profile]}.items()})
        frame = load_results(json_paths)
        threads = str(int(frame["threads"].iloc[0])) if not frame.empty else str(config.threads)
        device = "cuda" if config.device in ("cuda", "all") and _cuda() else "cpu"
        mlflow.set_tags({**environment_tags(device), "lstm_bench.role": "benchmark",
                         "lstm_bench.torch_threads": threads})
        if frame.empty:
            print("No benchmark ran (every case skipped?); nothing to log.", file=sys.stderr)
        else:
            mlflow.log_metrics(metrics_of(frame))
            write_outputs(frame, folder)
            grid = frame[frame["sweep"].isna()]
            for device_name in sorted(grid["device"].unique()):
                for profile in config.profile:
                    print(f"\n{device_name}, profile {profile}: median time (ratio to native, 95 % interval)")
                    print(results_table(frame, profile, device_name).to_string(index=False))
        mlflow.log_artifacts(str(folder), artifact_path="benchmark")
        if output_dir:
            target = Path(output_dir)
            target.mkdir(parents=True, exist_ok=True)
            for path in folder.iterdir():
                (target / path.name).write_bytes(path.read_bytes())
        print(f"\nBenchmark run: {run.info.run_id} in {mlflow.get_tracking_uri()}\n"
              f"Open it: {run_address(experiment_id, run.info.run_id)}")
    return 0


def run_suite(config: BenchmarkConfig, profile: str, json_path: Path) -> int:
    """The suite in a fresh process under ``profile``'s settings; its exit status."""
    from lstm_models.benchmarking.suite_environment import suite_environment

    command = pytest_command(config, profile, json_path)
    settings = " ".join(f"{name}={value}" for name, value in PROFILES[profile].items())
    print(f"Running ({profile}{': ' + settings if settings else ''}):", " ".join(command[1:]), flush=True)
    # The suite's output goes straight to the console: pytest's progress is the progress of this run.
    completed = subprocess.run(command, env=environment(profile, suite_environment()))
    return completed.returncode or (0 if json_path.exists() else 1)  # a suite that wrote nothing failed too


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
