"""``python -m mlflow_project.results_page``: benchmark JSON -> docs/results.md with its figures and its stamp, and the
README's headline block."""

import json

import pytest

from mlflow_project import results_page
from mlflow_project.results_page import README_MARKERS
from tests.helpers import markdown_rows


def _session(path, profile: str, native_ms: float, fast_ms: float, sweep_ms: tuple[float, float] | None = None):
    """A suite JSON as pytest-benchmark and the suite's plugin write it: two implementations at toy, ten rounds each,
    and with ``sweep_ms`` (native's, scratch_fast's) one point of the sequence-length sweep."""
    def entry(impl: str, median_ms: float, shape: str = "toy", **sweep) -> dict:
        rounds = [median_ms / 1e3 * (1 + 0.001 * step) for step in range(-5, 5)]
        return {"group": f"cpu-forward_backward-{shape}", "stats": {
                    "median": median_ms / 1e3, "min": min(rounds), "iqr": 0.0, "rounds": 10, "data": rounds},
                "extra_info": {"impl": impl, "device": "cpu", "pass": "forward_backward", "shape": shape, "threads": 2,
                               "flops": 1000, "first_call_s": 0.5, **sweep}}

    points = [] if sweep_ms is None else [entry(impl, ms, "seq_len=16", sweep="seq_len", value=16)
                                          for impl, ms in zip(("native", "scratch_fast"), sweep_ms)]
    path.write_text(json.dumps({
        "machine_info": {"profile": profile, "profile_settings": {"THP_MEM_ALLOC_ENABLE": "1" if profile == "tuned"
                                                                  else ""}, "node": "box", "torch_version": "2.x",
                         "torch_threads": 2, "command": f"pytest --lstm-profile={profile}",
                         "source": {"id": "0123456789abcdef", "dirty": False}, "cpu": {"brand_raw": "Some CPU"}},
        "datetime": "the session's time",
        "benchmarks": [entry("native", native_ms), entry("scratch_fast", fast_ms), *points]}))


def test_the_page_is_generated_with_its_stamp_and_the_readme_headline(tmp_path, capsys):
    paths = [tmp_path / "default.json", tmp_path / "tuned.json"]
    _session(paths[0], "default", 1.0, 0.9)
    _session(paths[1], "tuned", 0.8, 0.96)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_MARKERS[0]}\nold\n{README_MARKERS[1]}\nafter\n")
    docs = tmp_path / "docs"
    assert results_page.main(["--json", *map(str, paths), "--docs", str(docs), "--readme", str(readme)]) == 0
    page = (docs / "results.md").read_text()
    assert "`python -m mlflow_project.results_page --json" in page and "commit `0123456789ab`" in page
    assert "profile **tuned** (THP_MEM_ALLOC_ENABLE=1): `pytest --lstm-profile=tuned` on box, Some CPU" in page
    rows = markdown_rows(page)
    assert ["toy", "forward_backward", "0.90x, 0.90-0.90", "1.20x, 1.20-1.20"] in rows  # default, tuned
    assert (docs / "results" / "ratios_cpu.png").stat().st_size > 0
    assert (docs / "results" / "times_tuned_cpu.png").stat().st_size > 0
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert ["toy", "forward_backward", "0.90x, 0.90-0.90", "1.20x, 1.20-1.20"] in markdown_rows(text)
    assert "![ratios to nn.LSTM on CPU, both profiles](docs/results/ratios_cpu.png)" in text


def test_the_scaling_sweeps_get_a_table_of_their_own(tmp_path):
    paths = [tmp_path / "default.json", tmp_path / "tuned.json"]
    _session(paths[0], "default", 1.0, 0.9, sweep_ms=(2.0, 1.5))
    _session(paths[1], "tuned", 0.8, 0.96, sweep_ms=(2.0, 2.5))
    docs, readme = tmp_path / "docs", tmp_path / "README.md"
    readme.write_text(f"{README_MARKERS[0]}\n{README_MARKERS[1]}\n")
    assert results_page.main(["--json", *map(str, paths), "--docs", str(docs), "--readme", str(readme)]) == 0
    page = (docs / "results.md").read_text()
    assert "## Shapes not tuned for" in page
    (sweep_row,) = [row for row in markdown_rows(page) if row[:2] == ["seq_len", "seq_len=16"]]
    assert [cell.split(",")[0] for cell in sweep_row[2:]] == ["0.75x", "1.25x"]  # default, tuned
    assert ["toy", "forward_backward", "0.90x, 0.90-0.90", "1.20x, 1.20-1.20"] in markdown_rows(page)  # grid apart
    assert (docs / "results" / "scaling.png").stat().st_size > 0


def test_no_json_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        results_page.main(["--json", str(tmp_path / "absent.json"), "--docs", str(tmp_path)])
    assert exit_info.value.code == 2 and "--json: no such file" in capsys.readouterr().err
