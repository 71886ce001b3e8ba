"""`mlflow run .` end to end into a temporary sqlite store: runs, params, tags, metrics, dataset, models, the
comparison on the parent, a logged model reloaded elsewhere, the report, and conda.yaml as MLflow reads it."""

from __future__ import annotations

import json
import textwrap

import mlflow
import pytest

from tests.helpers import REPO, MlflowServer, browse, chromium, markdown_rows, project_env, run_cli

IMPLS = ("native", "scratch", "statquest")
SEEDS = (0, 1)
EPOCHS = 40
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """One `mlflow run . --env-manager local` with small settings; returns (tracking URI, parent run, children)."""
    folder = tmp_path_factory.mktemp("project")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = project_env(uri)
    params = {"impls": ",".join(IMPLS), "seeds": ",".join(map(str, SEEDS)), "max_epochs": str(EPOCHS)}
    args = ["-m", "mlflow", "run", str(REPO), "--env-manager", "local"]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    result = run_cli(args, env, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Summary over seeds" in result.stdout and f"[{len(IMPLS) * len(SEEDS)}/" in result.stdout
    (folder / "stdout.txt").write_text(result.stdout)
    mlflow.set_tracking_uri(uri)
    parents = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                 filter_string="tags.`lstm_bench.role` = 'comparison'")
    assert len(parents) == 1
    parent = parents[0]
    children = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    yield uri, parent, children, folder
    mlflow.set_tracking_uri(None)


def test_parent_and_children_finished(comparison):
    _, parent, children, _ = comparison
    assert parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == sorted(f"{i}-seed{s}" for i in IMPLS for s in SEEDS)
    assert all(c.info.status == "FINISHED" for c in children)


def test_children_carry_params_and_tags(comparison):
    _, _, children, _ = comparison
    for child in children:
        params, tags = child.data.params, child.data.tags
        assert child.info.run_name == f"{params['impl']}-seed{params['seed']}"
        for key in ("impls", "seeds", "dataset", "max_epochs", "lr", "hidden_size", "num_layers", "batch_size",
                    "init", "accelerator", "devices", "strategy"):
            assert key in params, key
        assert params["max_epochs"] == str(EPOCHS) and params["dataset"] == "companies"
        for key in ("torch_version", "lightning_version", "mlflow_version", "device", "cpu_model", "git_commit"):
            assert tags.get(f"lstm_bench.{key}"), key
        assert tags["lstm_bench.device"] == "cpu"
        assert len(tags["lstm_bench.git_commit"]) in (40, 7) or tags["lstm_bench.git_commit"] == "unknown"


def test_children_carry_metric_histories_and_finals(comparison):
    _, _, children, _ = comparison
    client = mlflow.MlflowClient()
    for child in children:
        for metric in ("train_loss", "prediction_A", "prediction_B"):
            history = client.get_metric_history(child.info.run_id, metric)
            assert [point.step for point in sorted(history, key=lambda p: p.step)] == list(range(1, EPOCHS + 1))
        metrics = child.data.metrics
        for key in ("final_train_loss", "final_prediction_A", "final_prediction_B", "epochs_to_converge",
                    "training_seconds", "steps_per_second"):
            assert key in metrics, key
        last = sorted(client.get_metric_history(child.info.run_id, "prediction_A"), key=lambda p: p.step)[-1]
        assert metrics["final_prediction_A"] == pytest.approx(last.value, abs=1e-6)
        assert metrics["steps_per_second"] == pytest.approx(2 * EPOCHS / metrics["training_seconds"], rel=1e-6)


def test_children_log_the_dataset_and_a_model(comparison):
    _, _, children, _ = comparison
    for child in children:
        inputs = child.inputs.dataset_inputs
        assert [d.dataset.name for d in inputs] == ["companies"]
        assert child.data.tags["lstm_bench.model_uri"].startswith("models:/")
        assert child.data.tags["lstm_bench.model_format"] == "pt2"


def test_parent_holds_the_comparison(comparison):
    _, parent, _, folder = comparison
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "comparison")}
    for name in ("summary.csv", "summary.md", "runs.csv", "histories.csv", "loss_curves.png", "predictions.png",
                 "loss_gap_vs_native.png"):
        assert f"comparison/{name}" in names, name
    local = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="comparison/summary.csv",
                                                dst_path=str(folder / "download"))
    import pandas as pd

    summary = pd.read_csv(local).set_index("impl")
    assert list(summary.index) == sorted(IMPLS)
    assert summary.loc["scratch", "max_loss_gap_vs_native_mean"] <= 1e-3  # scratch tracks native
    assert summary.loc["scratch", "verdict"] == "trains the same as native"
    assert parent.data.metrics["scratch.final_train_loss"] == pytest.approx(
        summary.loc["scratch", "final_train_loss_mean"])


def test_logged_model_reloads_in_a_fresh_process_elsewhere(comparison, tmp_path):
    uri, _, children, _ = comparison
    child = next(c for c in children if c.data.params["impl"] == "scratch")
    script = textwrap.dedent(f"""
        import json, mlflow, numpy as np
        model = mlflow.pyfunc.load_model({child.data.tags['lstm_bench.model_uri']!r}, model_config={{'device': 'cpu'}})
        batch = np.array([[0, 0.5, 0.25, 1], [1, 0.5, 0.25, 1], [0, 0.5, 0.25, 1]], dtype=np.float32)
        print(json.dumps([float(v) for v in np.asarray(model.predict(batch)).reshape(-1)]))
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = project_env(uri)
    env.pop("PYTHONPATH")  # the model must load without the repository on the path
    env["MLFLOW_DEFAULT_PREDICTION_DEVICE"] = "cuda"  # as on a GPU machine; the README's call asks for the CPU
    result = run_cli(["-c", script], env, cwd=elsewhere, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = json.loads(result.stdout.strip().splitlines()[-1])
    metrics = child.data.metrics
    assert predictions == pytest.approx([metrics["final_prediction_A"], metrics["final_prediction_B"],
                                         metrics["final_prediction_A"]], abs=1e-5)


def _report_in_process(uri: str, arguments: list[str], monkeypatch) -> int:
    """The `main` that `python -m mlflow_project.report` runs, called in this process: a subprocess would spend
    most of its time importing MLflow again."""
    from mlflow_project import report

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    return report.main(arguments)


def test_report_from_the_finished_comparison(comparison, tmp_path, monkeypatch):
    uri, parent, _, _ = comparison
    assert _report_in_process(uri, ["--output-dir", str(tmp_path / "reports")], monkeypatch) == 0
    page = (tmp_path / "reports" / parent.info.run_id / "report.html").read_text()
    assert "trains the same as native" in page and page.count("data:image/png;base64,") == 3
    assert (tmp_path / "reports" / parent.info.run_id / "report.md").exists()
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "report")}
    assert "report/report.html" in names


def test_report_without_a_comparison_fails_clearly(sqlite_store, tmp_path, monkeypatch, capsys):
    assert _report_in_process(sqlite_store, ["--output-dir", str(tmp_path)], monkeypatch) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: no comparison run in sqlite:")


def test_conda_yaml_is_accepted_by_mlflow():
    from mlflow.utils.environment import _PythonEnv

    env = _PythonEnv.from_conda_yaml(str(REPO / "conda.yaml"))
    assert env.python and env.python.startswith("3.")
    names = " ".join(env.dependencies)
    for package in ("torch", "lightning", "mlflow", "pandas", "matplotlib"):
        assert package in names


def test_report_groups_benchmark_runs_by_machine(comparison, tmp_path, monkeypatch):
    # Two machines logging benchmark runs to one store (as to a shared server); the figures are test data for
    # the grouping, not measurements.
    uri, parent, _, _ = comparison
    client = mlflow.MlflowClient(uri)
    for host, gpu, native_ms in (("cpu-box", None, 2.0), ("gpu-box", "NVIDIA H100", 0.5)):
        run = client.create_run(parent.info.experiment_id, run_name="benchmark")
        tags = {"lstm_bench.role": "benchmark", "lstm_bench.hostname": host, "lstm_bench.cpu_model": "Some CPU"}
        if gpu:
            tags["lstm_bench.gpu_model"] = gpu
        for key, value in tags.items():
            client.set_tag(run.info.run_id, key, value)
        client.log_metric(run.info.run_id, "tuned.cpu.forward.toy.native.median_ms", native_ms)
        client.log_metric(run.info.run_id, "tuned.cpu.forward.toy.scratch.median_ms", 2 * native_ms)
        client.log_metric(run.info.run_id, "tuned.cpu.forward.toy.scratch.ratio_to_native", 2.0)
        client.log_metric(run.info.run_id, "tuned.cpu.forward.toy.scratch.ratio_low", 1.9)
        client.log_metric(run.info.run_id, "tuned.cpu.forward.toy.scratch.ratio_high", 2.1)
        client.set_terminated(run.info.run_id)
    assert _report_in_process(uri, ["--output-dir", str(tmp_path / "reports")], monkeypatch) == 0
    markdown = (tmp_path / "reports" / parent.info.run_id / "report.md").read_text()
    section = markdown.split("## Benchmarks by machine", 1)[1]
    assert "### cpu-box: Some CPU" in section and "### gpu-box: Some CPU, NVIDIA H100" in section
    rows = markdown_rows(section)
    assert ["tuned", "cpu", "toy", "forward", "2 ms", "4 ms (2.00x, 1.90-2.10)"] in rows
    assert ["tuned", "cpu", "toy", "forward", "0.5 ms", "1 ms (2.00x, 1.90-2.10)"] in rows


# --- The comparison as the UI shows it ----------------------------------------------------------------------------

def test_runs_go_to_the_named_experiment_and_mlflow_runs_own_run_links_to_them(comparison):
    uri, parent, _, _ = comparison
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "lstm-bench"
    assert experiment.tags["mlflow.note.content"].startswith("Comparisons of LSTM implementations")
    (launcher,) = client.search_runs(["0"])  # `mlflow run` made its run in Default before the entry point started
    assert launcher.data.tags["lstm_bench.role"] == "launcher"
    assert launcher.data.tags["lstm_bench.launched"] == parent.info.run_id and launcher.info.status == "FINISHED"


def test_the_parent_describes_the_comparison_and_each_child_itself(comparison):
    _, parent, children, _ = comparison
    note = parent.data.tags["mlflow.note.content"]
    summary = markdown_rows(note)
    assert summary[0][:4] == ["impl", "runs", "failed", "converged"]
    assert sorted(row[0] for row in summary[2:]) == sorted(IMPLS)
    assert "`comparison/loss_curves.png`" in note and "`comparison/predictions.png`" in note
    verdicts = {row[0]: row[-1] for row in summary[2:]}
    for child in children:
        impl, seed = child.data.params["impl"], child.data.params["seed"]
        assert child.data.tags["mlflow.note.content"].startswith(f"**{impl}** trained from seed {seed} on companies")
        assert f"over all seeds: {verdicts[impl]}." in child.data.tags["mlflow.note.content"]


def test_each_model_is_named_after_its_run_and_linked_to_it(comparison):
    uri, parent, children, _ = comparison
    models = mlflow.MlflowClient(uri).search_logged_models(experiment_ids=[parent.info.experiment_id])
    assert sorted((model.name, model.source_run_id) for model in models) == sorted(
        (child.info.run_name, child.info.run_id) for child in children)


def test_the_printed_address_opens_the_comparison_in_a_real_browser(comparison):
    uri, parent, _, folder = comparison
    if chromium() is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium package)")
    printed = (folder / "stdout.txt").read_text()
    address = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("Open the comparison"))
    assert f"mlflow ui --backend-store-uri {uri}" in printed
    assert address.startswith(f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs/"
                              f"{parent.info.run_id}")
    ui = MlflowServer(folder, backend_store_uri=uri, ui=True)
    try:
        ui.wait_ready()
        page = browse(address.replace("http://127.0.0.1:5000", ui.url))
    finally:
        ui.stop()
    assert "compare-companies" in page  # the parent run's page
    assert "trains the same as native" in page and "converged" in page  # its description, the summary, rendered
