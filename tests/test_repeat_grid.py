"""``python -m benchmarks.repeat_grid``: repeated grid runs, each kept as it ends, and the ratios over them."""

import json

import pytest

from benchmarks import repeat_grid


def _write_run(path, medians_ms, device="cpu", extra=()):
    """A result file in pytest-benchmark's layout, as the grid writes it: {(impl, shape, pass): median ms}; ``extra``
    adds entries of other suites (a scaling sweep's, a peak memory's) as they write theirs."""
    benchmarks = [{"group": f"{device}-{pass_name}-{shape}",
                   "stats": {"median": median / 1e3, "min": median / 1e3, "iqr": 0.0, "rounds": 5},
                   "extra_info": {"impl": impl, "device": device, "pass": pass_name, "shape": shape, "threads": 2,
                                  "flops": 1}}
                  for (impl, shape, pass_name), median in medians_ms.items()]
    path.write_text(json.dumps({"benchmarks": benchmarks + list(extra)}))


def _runs_with(folder, medium_ratios, toy_ratios):
    """One file per pair of ratios: scratch_fast's medium and toy forward_backward against native's 100 and 1 ms."""
    folder.mkdir(exist_ok=True)
    for number, (medium, toy) in enumerate(zip(medium_ratios, toy_ratios), start=1):
        _write_run(folder / f"run_{number:03d}.json", {
            ("native", "medium", "forward_backward"): 100.0,
            ("scratch_fast", "medium", "forward_backward"): 100 * medium,
            ("native", "toy", "forward_backward"): 1.0, ("scratch_fast", "toy", "forward_backward"): toy,
        })


def _row(output, first_words):
    return next(line.split() for line in output.splitlines() if line.split()[:len(first_words)] == first_words)


def test_summary_gives_the_spread_and_how_often_each_target_held(tmp_path, capsys):
    _runs_with(tmp_path, medium_ratios=[0.9, 1.0, 1.1], toy_ratios=[1.2, 1.6, 1.4])
    status = repeat_grid.main(["--summarise", str(tmp_path), "--target", "medium.forward_backward=1.0",
                               "--target", "toy.forward_backward=1.5"])
    output = capsys.readouterr().out
    assert status == 0
    assert output.startswith("3 runs (run_001.json .. run_003.json); scratch_fast / native on cpu")
    # min, median, max and runs; then how far native's own median moved (here not at all)
    assert _row(output, ["medium", "forward_backward"])[2:] == ["0.900", "1.000", "1.100", "3", "100", "to", "100"]
    assert _row(output, ["toy", "forward_backward"])[2:] == ["1.200", "1.400", "1.600", "3", "1.00", "to", "1.00"]
    # At or below the bound counts as held; only the first run holds both.
    assert _row(output, ["medium", "forward_backward", "<="])[4:] == ["2/3", "0.900", "1.000", "1.100"]
    assert _row(output, ["toy", "forward_backward", "<="])[4:] == ["2/3", "1.200", "1.600", "1.400"]
    assert _row(output, ["all", "targets"])[-1] == "1/3"


def test_entries_of_other_suites_in_a_file_are_left_out(tmp_path, capsys):
    # A file written by the whole suite with --lstm-scaling holds sweeps and peak memory beside the grid.
    sweep = [{"group": "scaling-seq_len", "stats": {"median": 0.5, "min": 0.5, "iqr": 0.0, "rounds": 3},
              "extra_info": {"impl": impl, "device": "cpu", "pass": "forward_backward", "threads": 2,
                             "shape": "seq_len=16", "sweep": "seq_len", "value": 16, "flops": 1}}
             for impl in ("native", "scratch_fast")]
    memory = {"group": "memory-cpu-toy", "stats": {"median": 1.5, "min": 1.5, "iqr": 0.0, "rounds": 1},
              "extra_info": {"impl": "scratch_fast", "device": "cpu", "pass": "memory", "shape": "toy"}}
    _write_run(tmp_path / "run_001.json", {("native", "toy", "forward"): 1.0, ("scratch_fast", "toy", "forward"): 2.0},
               extra=[*sweep, memory])
    assert repeat_grid.main(["--summarise", str(tmp_path)]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[3:] if line]
    assert rows == [["toy", "forward"]]


@pytest.mark.slow  # runs the grid in pytest processes
def test_a_real_run_is_added_to_the_runs_already_in_the_folder(tmp_path, capsys):
    # A run from an earlier batch, kept: the new one is numbered after it and both are summarised.
    _runs_with(tmp_path, medium_ratios=[0.5], toy_ratios=[7.0])
    status = repeat_grid.main(["--runs", "1", "--out", str(tmp_path), "--target", "toy.forward_backward=100", "--",
                               "--lstm-shapes", "toy", "--lstm-impls", "native,scratch_fast", "--lstm-threads", "1"])
    output = capsys.readouterr().out
    assert status == 0, output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run_001.json", "run_002.json"]
    assert "run 1/1 -> " in output and "run 1/1 done in" in output
    new_run = {(b["extra_info"]["impl"], b["extra_info"]["pass"]): b["stats"]["median"]
               for b in json.loads((tmp_path / "run_002.json").read_text())["benchmarks"]}
    assert set(new_run) == {(impl, pass_name) for impl in ("native", "scratch_fast")
                            for pass_name in ("forward", "backward", "forward_backward")}
    measured = new_run[("scratch_fast", "forward_backward")] / new_run[("native", "forward_backward")]
    assert _row(output, ["toy", "forward_backward", "<="])[4:] == ["2/2", "7.000", f"{measured:.3f}"]
    assert _row(output, ["toy", "forward"])[5] == "1"  # only the new run timed the forward alone
    native_ms = new_run[("native", "forward")] * 1e3
    shown = f"{native_ms:#.3g}".rstrip(".")
    assert _row(output, ["toy", "forward"])[6:] == [shown, "to", shown]
    assert output.splitlines()[2].startswith("2 runs (run_001.json .. run_002.json)")


@pytest.mark.slow  # runs the grid in pytest processes
def test_a_failed_run_stops_the_batch_and_keeps_the_runs_before_it(tmp_path, capsys):
    _runs_with(tmp_path, medium_ratios=[0.9], toy_ratios=[1.2])
    status = repeat_grid.main(["--runs", "3", "--out", str(tmp_path), "--", "--lstm-impls", "native,lstm9"])
    captured = capsys.readouterr()
    assert status == 1
    error = captured.err.strip().splitlines()[0]
    assert error.startswith("error: run 1/3 failed (pytest exit ") and "the 0 finished before it are in" in error
    assert [path.name for path in tmp_path.iterdir()] == ["run_001.json"]
    assert captured.out.splitlines()[1].startswith("1 runs (run_001.json .. run_001.json)")  # still summarised


@pytest.mark.slow  # runs the grid in pytest processes
def test_a_run_whose_tests_fail_is_set_aside_not_summarised(tmp_path, capsys, monkeypatch):
    # A stand-in grid file: it times, then fails, as a grid test does when its results check fails. pytest-benchmark
    # still writes the JSON; it must not count as a run. (-p loads the grid's options, which it does not use.)
    failing_grid = tmp_path / "test_failing_grid.py"
    failing_grid.write_text("def test_timed_then_failing(benchmark):\n    benchmark(lambda: None)\n    assert False\n")
    monkeypatch.setattr(repeat_grid, "GRID_FILE", failing_grid)
    runs = tmp_path / "runs"
    _runs_with(runs, medium_ratios=[0.9, 0.8], toy_ratios=[1.2, 1.1])
    (runs / "run_002.json").rename(runs / "run_007.json")  # numbering follows the highest, not the count
    status = repeat_grid.main(["--runs", "2", "--out", str(runs), "--", "-p", "benchmarks.plugin"])
    captured = capsys.readouterr()
    assert status == 1
    assert "error: run 1/2 failed (pytest exit 1: " in captured.err
    assert "(what it timed is in failed_008.json); the 0 finished before it are in" in captured.err
    assert sorted(path.name for path in runs.iterdir()) == ["failed_008.json", "run_001.json", "run_007.json"]
    assert captured.out.splitlines()[1].startswith("2 runs (run_001.json .. run_007.json)")


@pytest.mark.parametrize("argv, message", [
    (["--summarise", "x", "--target", "medium.forward_backward"], "--target: write SHAPE.PASS=MAX"),
    (["--summarise", "x", "--target", "huge.forward=1"], "--target: SHAPE is one of toy, small, medium, large"),
    (["--summarise", "x", "--target", "medium.sideways=1"], "PASS one of forward, backward, forward_backward"),
    (["--summarise", "x", "--target", "medium.forward=0"], "--target: MAX must be a ratio above 0"),
    (["--summarise", "x", "--target", "medium.forward=fast"], "--target: write SHAPE.PASS=MAX"),
    ([], "--out: give --out FOLDER to run the grid, or --summarise FOLDER"),
    (["--out", "x", "--summarise", "x"], "--out: give --out FOLDER"),
    (["--out", "x", "--runs", "0"], "--runs: must be at least 1 (got 0)"),
    (["--summarise", "x", "--device", "tpu"], "--device"),
])
def test_bad_arguments_are_refused_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        repeat_grid.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_results_that_cannot_answer_are_refused_in_one_line(tmp_path, capsys):
    assert repeat_grid.main(["--summarise", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.strip() == f"error: --summarise: no run_*.json in {tmp_path / 'none'}"

    _runs_with(tmp_path / "runs", medium_ratios=[0.9], toy_ratios=[1.2])
    assert repeat_grid.main(["--summarise", str(tmp_path / "runs"), "--target", "large.forward=1.25"]) == 1
    assert capsys.readouterr().err.strip() == "error: --target large.forward: not timed in run_001.json"

    assert repeat_grid.main(["--summarise", str(tmp_path / "runs"), "--impl", "scratch"]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "run_001.json: no scratch results beside native on cpu (implementations there: scratch_fast)")

    (tmp_path / "runs" / "run_002.json").write_text("{not json")
    assert repeat_grid.main(["--summarise", str(tmp_path / "runs")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "run_002.json: not a result file of the grid (JSONDecodeError" in error
    assert len(error.splitlines()) == 1
