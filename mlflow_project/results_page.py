"""The one results page: benchmark JSON (or the latest benchmark run in MLflow) -> ``docs/results.md``, its
figures under ``docs/results/``, and the README's headline between its ``results`` markers.

    python -m mlflow_project.results_page --json results_default.json results_tuned.json
    python -m mlflow_project.results_page --from-mlflow [--run-id ID]

The page is stamped with what made it: the machine, the torch version, the commit, the date, and the commands.
No figure appears in the README or the docs unless this command produced it.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .benchmark_results import (PASS_ORDER, SHAPE_ORDER, grid_results, impl_profile_pairs, load_results, ratio_text,
                                results_table, sweep_results)
from .comparison import markdown_table

REPO = Path(__file__).resolve().parent.parent
PAGE_PASSES = ("forward", "forward_backward")
README_PASSES = ("forward_backward",)  # the README's headline: a training step
README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")


def stamp(paths: list[Path], command: str) -> list[str]:
    """What made the page: machine, torch, commit, date and the commands, from the suite's own JSON."""
    lines = []
    for path in paths:
        results = json.loads(path.read_text())
        machine = results["machine_info"]
        commit = machine.get("source") or results.get("commit_info", {})
        cpu = machine.get("cpu", {}).get("brand_raw") or machine.get("processor") or "unknown CPU"
        dirty = " (with uncommitted changes)" if commit.get("dirty") else ""
        settings = ", ".join(f"{name}={value or '(unset)'}" for name, value in machine.get("profile_settings", {}).items())
        lines.append(f"- profile **{machine.get('profile', 'default')}** ({settings}): `{machine.get('command', '?')}` "
                     f"on {machine.get('node', '?')}, {cpu}, {machine.get('torch_threads', '?')} threads, torch "
                     f"{machine.get('torch_version', '?')}, scratch_fast loops "
                     f"{machine.get('scratch_fast_loops', 'plain')}, commit `{commit.get('id', 'unknown')[:12]}`{dirty}, "
                     f"{results.get('datetime', '?')}")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [f"Generated {when} by `{command}` from these benchmark sessions:", "", *lines]


def ratio_cells(points: pd.DataFrame, columns: list[tuple[str, str]]) -> dict[str, str]:
    """One table row's cells from ``points`` (its rows of the results): per (implementation, profile) of
    ``columns``, the ratio to native with its interval, or '-' where that pair has none."""
    found = points.set_index(["impl", "profile"])
    return {f"{impl} ({profile})": ratio_text(*found.loc[(impl, profile), ["ratio_to_native", "ratio_low",
                                                                           "ratio_high"]])
            if (impl, profile) in found.index else "-" for impl, profile in columns}


def headline(frame: pd.DataFrame, device: str = "cpu", passes: tuple[str, ...] = PAGE_PASSES) -> pd.DataFrame:
    """Rows (shape, pass), a column per (implementation, profile): its ratio to native with the interval."""
    grid = grid_results(frame)
    grid = grid[(grid["device"] == device) & (grid["impl"] != "native") & grid["pass"].isin(passes)]
    columns = impl_profile_pairs(grid)
    rows = []
    for shape in [s for s in SHAPE_ORDER if s in set(grid["shape"])]:
        for pass_name in [p for p in PASS_ORDER if p in set(grid["pass"])]:
            points = grid[(grid["shape"] == shape) & (grid["pass"] == pass_name)]
            rows.append({"shape": shape, "pass": pass_name, **ratio_cells(points, columns)})
    return pd.DataFrame(rows)


def sweep_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """The scaling sweeps (shapes no implementation was tuned for; CPU, forward+backward): rows (sweep, value), a
    column per (implementation, profile), its ratio to native with the interval. Empty without sweeps."""
    sweeps = sweep_results(frame)
    sweeps = sweeps[sweeps["impl"] != "native"]
    columns = impl_profile_pairs(sweeps)
    rows = [{"sweep": sweep, "shape": points["shape"].iloc[0], **ratio_cells(points, columns)}
            for (sweep, _), points in sweeps.groupby(["sweep", "value"], sort=True)]  # by sweep, then value
    return pd.DataFrame(rows)


def write_page(paths: list[Path], command: str, docs: Path, readme: Path | None) -> Path:
    from .benchmark_figures import plot_ratios, plot_scaling, plot_times

    frame = load_results(paths)
    if frame.empty:
        raise ValueError("the benchmark JSON holds no timed pass")
    figures = docs / "results"
    figures.mkdir(parents=True, exist_ok=True)
    grid = grid_results(frame)
    devices = sorted(grid["device"].unique())
    lines = ["# Results", "", *stamp(paths, command), "",
             "Each cell: the implementation's median time over native's (`nn.LSTM`) in the same process profile, "
             "with a bootstrap 95 % interval from the session's timed rounds (below 1.00: faster). The interval "
             "covers the rounds of one session; a machine whose speed drifts moves ratios between sessions further.",
             ""]
    for device in devices:
        ratios = plot_ratios(frame, device, figures / f"ratios_{device}.png")
        lines += [f"## {device}: ratios to nn.LSTM, both profiles", "", markdown_table(headline(frame, device)), ""]
        if ratios is not None:
            lines += [f"![ratios to nn.LSTM on {device}](results/{ratios.name})", ""]
        for profile in sorted(grid["profile"].unique()):
            times = plot_times(frame, profile, device, figures / f"times_{profile}_{device}.png")
            lines += [f"### {device}, profile {profile}: median times", "",
                      markdown_table(results_table(frame, profile, device)), ""]
            if times is not None:
                lines += [f"![median times, {profile}](results/{times.name})", ""]
    sweeps = sweep_ratios(frame)
    if not sweeps.empty:
        lines += ["## Shapes not tuned for: the scaling sweeps (cpu, forward_backward), ratios to nn.LSTM", "",
                  markdown_table(sweeps), ""]
        scaling = plot_scaling(frame, figures / "scaling.png")
        if scaling is not None:
            lines += [f"![times along the sweeps]({'results/' + scaling.name})", ""]
    page = docs / "results.md"
    page.write_text("\n".join(lines))
    if readme is not None and "cpu" in devices:
        update_readme(readme, markdown_table(headline(frame, "cpu", README_PASSES)), "docs/results/ratios_cpu.png")
    return page


def update_readme(readme: Path, table: str, figure: str) -> None:
    """The headline table and figure between the README's results markers."""
    start, end = README_MARKERS
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} block for the results")
    block = f"{start}\n{table}\n\n![ratios to nn.LSTM on CPU, both profiles]({figure})\n{end}"
    readme.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S))


def latest_run_json(run_id: str | None, folder: Path) -> list[Path]:
    """The benchmark JSON of a run (the latest finished benchmark run if none is named), downloaded."""
    import mlflow

    if run_id is None:
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list", max_results=1,
                                  filter_string="tags.`lstm_bench.role` = 'benchmark' and attributes.status = "
                                                "'FINISHED'", order_by=["attributes.start_time DESC"])
        if not runs:
            raise ValueError(f"no finished benchmark run in {mlflow.get_tracking_uri()}")
        run_id = runs[0].info.run_id
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="benchmark", dst_path=str(folder)))
    return sorted(local.glob("results_*.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlflow_project.results_page", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--json", nargs="+", type=Path, metavar="FILE", help="the suite's JSON, one file per profile")
    source.add_argument("--from-mlflow", action="store_true", help="the JSON of a benchmark run in MLFLOW_TRACKING_URI")
    parser.add_argument("--run-id", help="with --from-mlflow: this run (default: the latest finished benchmark run)")
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="where results.md and results/ go")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md",
                        help="the README whose headline block is rewritten")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "mlflow_project.results_page", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory() as scratch:
        try:
            paths = args.json or latest_run_json(args.run_id, Path(scratch))
            missing = [str(path) for path in paths if not path.is_file()]
            if missing or not paths:
                parser.error(f"--json: no such file: {', '.join(missing) or '(none found)'}")
            page = write_page(paths, command, args.docs, args.readme)
        except (ValueError, KeyError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"written: {page} and its figures under {args.docs / 'results'}; the README's headline block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
