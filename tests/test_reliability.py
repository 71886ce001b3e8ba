"""Bad input, training failures, interruption, concurrent writers and an unreachable server: nothing is lost and
no run is left RUNNING. Every test uses a real sqlite store (or a real port with nothing behind it)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.helpers import REPO, all_runs, free_port, markdown_rows, project_env, run_cli
from mlflow_project import benchmark, child_pool, report, train

pytestmark = pytest.mark.slow


def runs_of(uri: str) -> list:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def children_of(parent, runs) -> list:
    return [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


# --- Bad input -------------------------------------------------------------------------------------------------

def _csv(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


TRAIN_CASES = {
    # case: (arguments, the parameter the one-line error must start with)
    "lr_not_a_number": (["--lr", "abc"], "lr"),
    "lr_negative": (["--lr", "-1"], "lr"),
    "max_epochs_zero": (["--max-epochs", "0"], "max_epochs"),
    "hidden_size_zero": (["--hidden-size", "0"], "hidden_size"),
    "num_layers_fraction": (["--num-layers", "1.5"], "num_layers"),
    "batch_size_empty": (["--batch-size", ""], "batch_size"),
    "seeds_not_integers": (["--seeds", "a,b"], "seeds"),
    "unknown_impl": (["--impls", "native,lstm9"], "impls"),
    "unknown_dataset": (["--dataset", "weather"], "dataset"),
    "statquest_wider_than_one": (["--hidden-size", "2"], "hidden_size"),
    "statquest_deeper_than_one": (["--num-layers", "2"], "num_layers"),
    "unknown_init": (["--init", "xavier"], "init"),
    "unknown_accelerator": (["--accelerator", "tpu9"], "accelerator"),
    "cuda_without_gpu": (["--accelerator", "cuda"], "accelerator"),
    "devices_zero": (["--devices", "0"], "devices"),
    "unknown_strategy": (["--strategy", "magic"], "strategy"),
    "val_fraction_one": (["--val-fraction", "1"], "val_fraction"),
    "workers_zero": (["--workers", "0"], "workers"),
    "csv_missing": (["--dataset", "{tmp}/absent.csv"], "dataset"),
    "csv_non_numeric": (["--dataset", "csv:value\n1\n2\nx\n4\n"], "dataset"),
    "csv_nan": (["--dataset", "csv:value\n1\nnan\n3\n4\n"], "dataset"),
    "csv_missing_column": (["--dataset", "csv:value\n1\n2\n3\n", "--column", "price"], "dataset"),
    "csv_too_short": (["--dataset", "csv:value\n1\n2\n3\n", "--window", "10"], "dataset"),
}


def _materialise(arguments: list[str], tmp_path) -> list[str]:
    """'csv:<text>' becomes a file with that text; '{tmp}' the test's folder."""
    out = []
    for argument in arguments:
        if argument.startswith("csv:"):
            argument = _csv(tmp_path, "series.csv", argument.removeprefix("csv:"))
        out.append(argument.replace("{tmp}", str(tmp_path)))
    return out


def _launching_run(monkeypatch) -> str:
    """What `mlflow run` does before the entry point starts: a RUNNING run, named by MLFLOW_RUN_ID."""
    run = mlflow.MlflowClient().create_run(experiment_id="0")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    return run.info.run_id


def _assert_refused(run_id: str, returned: int, err: str, parameter: str) -> None:
    assert returned == 2
    # MLflow may log its own INFO lines (creating the store's tables); the entry point adds exactly one line.
    lines = [line for line in err.strip().splitlines() if " INFO mlflow" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"error: {parameter}: "), lines
    launched = mlflow.MlflowClient().get_run(run_id)
    assert launched.info.status == "FAILED"
    assert launched.data.tags["lstm_bench.error"].startswith(f"{parameter}: ")
    others = [run for run in runs_of(mlflow.get_tracking_uri()) if run.info.run_id != run_id]
    assert others == [], "no other run may start"


@pytest.mark.parametrize("case", TRAIN_CASES, ids=str)
def test_bad_input_to_main_fails_the_run_with_one_line(case, sqlite_store, tmp_path, monkeypatch, capsys):
    arguments, parameter = TRAIN_CASES[case]
    run_id = _launching_run(monkeypatch)
    returned = train.main(_materialise(arguments, tmp_path))
    _assert_refused(run_id, returned, capsys.readouterr().err, parameter)


BENCHMARK_CASES = {
    "unknown_impl": (["--impls", "lstm9"], "impls"),
    "unknown_shape": (["--shapes", "toy,huge"], "shapes"),
    "unknown_device": (["--device", "tpu"], "device"),
    "cuda_without_gpu": (["--device", "cuda"], "device"),
    "threads_negative": (["--threads", "-1"], "threads"),
    "threads_not_a_number": (["--threads", "two"], "threads"),
    "scaling_not_a_switch": (["--scaling", "maybe"], "scaling"),
}


@pytest.mark.parametrize("case", BENCHMARK_CASES, ids=str)
def test_bad_input_to_benchmark_fails_the_run_with_one_line(case, sqlite_store, monkeypatch, capsys):
    import torch

    if case == "cuda_without_gpu" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so device=cuda is allowed")
    arguments, parameter = BENCHMARK_CASES[case]
    run_id = _launching_run(monkeypatch)
    returned = benchmark.main(arguments)
    _assert_refused(run_id, returned, capsys.readouterr().err, parameter)


def test_report_of_an_unknown_run_exits_2(sqlite_store, tmp_path, capsys):
    assert report.main(["--parent-run-id", "0123456789abcdef0123456789abcdef", "--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")


def test_bad_input_through_mlflow_run(tmp_path):
    # End to end: MLflow passes the text on unchecked; the entry point refuses it and fails the run.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["-m", "mlflow", "run", str(REPO), "--env-manager", "local", "-P", "lr=abc"],
                     project_env(uri), cwd=tmp_path, timeout=300)
    assert result.returncode != 0
    assert "error: lr: must be a positive number, got 'abc'" in result.stderr
    runs = runs_of(uri)
    assert [run.info.status for run in runs] == ["FAILED"]


# --- Training failures -----------------------------------------------------------------------------------------

def test_non_finite_loss_fails_that_child_and_the_comparison_goes_on(tmp_path):
    # At this learning rate the linear head's weights reach ~1e18 after one Adam step and, for some seeds, the
    # squared error overflows float32 to inf; the other seeds stay finite. Which seeds overflow may vary across
    # torch builds, so the test asks for at least one run of each kind.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["-m", "mlflow_project.train", "--impls", "native", "--seeds", "0,1,2,3,4,5", "--hidden-size",
                      "4", "--lr", "5e18", "--max-epochs", "5", "--progress-bar", "off"],
                     project_env(uri), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = runs_of(uri)
    parent = next(run for run in runs if run.data.tags.get("lstm_bench.role") == "comparison")
    children = children_of(parent, runs)
    assert parent.info.status == "FINISHED" and len(children) == 6
    failed = [run for run in children if run.info.status == "FAILED"]
    finished = [run for run in children if run.info.status == "FINISHED"]
    assert failed and finished and len(failed) + len(finished) == 6
    for run in failed:
        assert run.data.tags["lstm_bench.failure"].startswith("train_loss became ")
        assert int(run.data.tags["lstm_bench.failed_epoch"]) >= 1
        assert run.data.params["lr"] == "5e+18" and run.data.tags["lstm_bench.impl"] == "native"  # kept
        assert "epochs_trained" in run.data.metrics
        assert "FAILED: train_loss became" in result.stdout
    assert parent.data.metrics.get("native.training_seconds") is not None
    summary = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/comparison/summary.md")
    assert [["native", "6", str(len(failed))]] == [row[:3] for row in markdown_rows(summary) if row[0] == "native"]


# --- Interruption ----------------------------------------------------------------------------------------------

def _wait_for_metrics(client: mlflow.MlflowClient, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until some child run has a train_loss history in the store (metrics are written every 5 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        runs = all_runs(client, "attributes.status = 'RUNNING'")
        if any(client.get_metric_history(run.info.run_id, "train_loss") for run in runs):
            return
        time.sleep(0.5)
    raise TimeoutError("no metric reached the store")


@pytest.mark.parametrize("signum, workers", [
    (signal.SIGTERM, "2"),  # the children train in worker processes, which end their own runs
    (signal.SIGINT, "1"),  # the child trains in the process that gets the signal
], ids=["SIGTERM-workers", "SIGINT-in-process"])
def test_signal_ends_runs_killed_and_keeps_metrics(signum, workers, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # The test's client creates the store's tables before the comparison starts: a client made while the
    # comparison creates them would run the same migrations at the same moment, without the entry point's lock,
    # and one of the two would fail on "table ... already exists".
    client = mlflow.MlflowClient(uri)
    client.search_experiments(max_results=1)
    process = subprocess.Popen([sys.executable, "-m", "mlflow_project.train", "--impls", "native,scratch",
                                "--seeds", "0,1", "--max-epochs", "5000", "--workers", workers, "--progress-bar",
                                "off"], env=project_env(uri), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_metrics(client, process)
        process.send_signal(signum)
        output, _ = process.communicate(timeout=30)  # it stops within seconds, or the test fails here
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, output[-3000:]
    assert f"interrupted by {signal.Signals(signum).name}" in output
    runs = runs_of(uri)
    assert all(run.info.status != "RUNNING" for run in runs), [(r.info.run_name, r.info.status) for r in runs]
    parent = next(run for run in runs if run.data.tags.get("lstm_bench.role") == "comparison")
    assert parent.info.status == "KILLED"
    killed = [run for run in children_of(parent, runs) if run.info.status == "KILLED"]
    assert killed, "the children being trained end KILLED"
    assert any(client.get_metric_history(run.info.run_id, "train_loss") for run in killed), "metrics are kept"


LOST_SIGNAL_SCRIPT = """
import signal, sys
from lstm_models.training import CompaniesDataModule, LSTMRegressor
from mlflow_project.child_run import make_trainer
from mlflow_project.config import build_config
from mlflow_project.interruption import Interrupted, raise_on_signals
import lightning as L

class SignalInsideAFinalizer(L.Callback):
    # At epoch 3 the signal handler runs inside __del__, where Python prints "Exception ignored" and goes on.
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 3:
            class Collected:
                def __del__(self):
                    signal.raise_signal(signal.SIGTERM)
            Collected()
            print("after the lost exception", flush=True)

raise_on_signals()
trainer = make_trainer(build_config({"max_epochs": "1000"}), False, False)
trainer.callbacks.append(SignalInsideAFinalizer())
try:
    trainer.fit(LSTMRegressor("native"), CompaniesDataModule())
except Interrupted as interruption:
    print(f"interrupted at epoch {trainer.current_epoch}", flush=True)
    sys.exit(interruption.exit_status)
"""


def test_a_signal_whose_exception_python_drops_still_stops_training(tmp_path):
    """A handler that runs inside a finalizer loses its exception; training must stop at the next batch anyway."""
    finished = subprocess.run([sys.executable, "-c", LOST_SIGNAL_SCRIPT], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env=project_env(f"sqlite:///{tmp_path / 'unused.db'}"))
    assert "Exception ignored" in finished.stderr  # the situation under test did arise
    assert "after the lost exception" in finished.stdout
    assert "interrupted at epoch 3" in finished.stdout, finished.stdout + finished.stderr
    assert finished.returncode == 128 + signal.SIGTERM


LIGHTNING_STOPS_FIRST_SCRIPT = """
import signal, sys
import lightning as L
import mlflow_project.child_run as child_run
from mlflow_project import train

class SignalLostAfterStopOnSignal(L.Callback):
    # Runs after StopOnSignal's check of this batch: the handler runs inside __del__, its exception is lost, and
    # the next check is Lightning's own, at the end of the batch, which raises SIGTERMException.
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 3 and batch_idx == 0:
            class Collected:
                def __del__(self):
                    signal.raise_signal(signal.SIGTERM)
            Collected()

make_trainer = child_run.make_trainer

def make_trainer_with_a_late_signal(*args, **kwargs):
    trainer = make_trainer(*args, **kwargs)
    trainer.callbacks.append(SignalLostAfterStopOnSignal())
    return trainer

child_run.make_trainer = make_trainer_with_a_late_signal
sys.exit(train.main(["--impls", "native", "--seeds", "0", "--max-epochs", "1000", "--progress-bar", "off"]))
"""


def test_a_signal_that_lightning_answers_first_still_ends_the_run_killed(tmp_path):
    """Lightning's own SIGTERM flag stops the loop with SIGTERMException when our handler's exception was lost:
    the run must end KILLED, as for any interruption, not FAILED."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    finished = subprocess.run([sys.executable, "-c", LIGHTNING_STOPS_FIRST_SCRIPT], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, env=project_env(uri))
    assert "Exception ignored" in finished.stderr  # the situation under test did arise
    assert finished.returncode == 128 + signal.SIGTERM, finished.stdout + finished.stderr
    assert "interrupted by SIGTERM" in finished.stderr
    runs = runs_of(uri)
    child = next(run for run in runs if run.data.tags.get("lstm_bench.role") == "training")
    assert child.info.status == "KILLED", child.data.tags
    assert child.data.tags["lstm_bench.interrupted_by"] == "SIGTERM"
    assert child.data.metrics["epochs_trained"] == 3  # the epochs before the signal's, logged and kept


# --- Concurrency -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("launch", ["entry_point", "mlflow_run"])
def test_four_comparisons_at_once_into_one_new_sqlite_store(launch, tmp_path):
    # A store that does not exist yet: the four processes also race to create its tables, and through `mlflow
    # run`, which opens the store to create its run before the entry point starts, MLflow itself does.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # One child each: the race is between the four processes, not within one.
    if launch == "mlflow_run":
        command = [sys.executable, "-m", "mlflow", "run", str(REPO), "--env-manager", "local", "-P", "impls=native",
                   "-P", "seeds=0", "-P", "max_epochs=20"]
    else:
        command = [sys.executable, "-m", "mlflow_project.train", "--impls", "native", "--seeds", "0",
                   "--max-epochs", "20", "--progress-bar", "off"]
    processes = [subprocess.Popen(command, env=project_env(uri), cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    runs = runs_of(uri)
    assert all(run.info.status == "FINISHED" for run in runs), [(run.info.run_name, run.info.status) for run in runs]
    parents = [run for run in runs if run.data.tags.get("lstm_bench.role") == "comparison"]
    assert len(parents) == 4
    client = mlflow.MlflowClient(uri)
    for parent in parents:
        children = children_of(parent, runs)
        assert [child.info.run_name for child in children] == ["native-seed0"]
        for child in children:
            assert len(client.get_metric_history(child.info.run_id, "train_loss")) == 20
            assert child.data.tags["lstm_bench.model_format"] == "pt2"


# --- An unreachable server -------------------------------------------------------------------------------------

def test_unreachable_server_fails_fast_naming_the_uri(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli(["-m", "mlflow_project.train"], project_env(uri), cwd=tmp_path, timeout=30)  # fails fast
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: MLFLOW_TRACKING_URI: no MLflow tracking "
                                                             f"server answers at {uri}")


@pytest.mark.timeout(30)  # fails fast
@pytest.mark.parametrize("entry_point", [benchmark, report], ids=["benchmark", "report"])
def test_other_entry_points_fail_fast_on_an_unreachable_server(entry_point, monkeypatch, capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        assert entry_point.main([]) == 2
    finally:
        mlflow.set_tracking_uri(None)
    assert f"no MLflow tracking server answers at {uri}" in capsys.readouterr().err


# --- Children's processes, and orphans ----------------------------------------------------------------------------------

def _ignore_sigterm_and_sleep(ignoring) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ignoring.set()
    time.sleep(120)


def test_stopping_kills_a_child_that_ignores_sigterm_and_ends_its_run(sqlite_store, monkeypatch):
    """A child that does not exit on SIGTERM (stuck in C code, say) must not keep the comparison waiting."""
    monkeypatch.setattr(child_pool, "WORKER_EXIT_SECONDS", 1.0)
    run = mlflow.MlflowClient().create_run("0")
    context = multiprocessing.get_context("fork")
    ignoring = context.Event()
    process = context.Process(target=_ignore_sigterm_and_sleep, args=(ignoring,))
    process.start()
    assert ignoring.wait(60)
    receiving, _ = multiprocessing.Pipe(duplex=False)
    child_pool._stop([child_pool.Child("native", 0, run.info.run_id, process, receiving)])
    assert process.exitcode == -signal.SIGKILL
    assert mlflow.get_run(run.info.run_id).info.status == "KILLED"


def _running_child_pid(client: mlflow.MlflowClient, process: subprocess.Popen, timeout: float = 120) -> int:
    """The process of a child run that is training (it has logged a train_loss)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        for run in all_runs(client, "attributes.status = 'RUNNING'"):
            if run.data.tags.get("mlflow.parentRunId") and client.get_metric_history(run.info.run_id, "train_loss"):
                return int(run.data.tags["lstm_bench.pid"])
        time.sleep(0.2)
    raise TimeoutError("no child trained")


def test_a_worker_killed_mid_comparison_fails_only_its_own_child(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    client.search_experiments(max_results=1)  # the tables first (see test_signal_ends_runs_killed_and_keeps_metrics)
    process = subprocess.Popen([sys.executable, "-m", "mlflow_project.train", "--impls", "native,scratch",
                                "--seeds", "0,1,2", "--max-epochs", "150", "--workers", "2", "--progress-bar",
                                "off"], env=project_env(uri), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        os.kill(_running_child_pid(client, process), signal.SIGKILL)  # as the out-of-memory killer would
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    runs = runs_of(uri)
    parent = next(run for run in runs if run.data.tags.get("lstm_bench.role") == "comparison")
    children = children_of(parent, runs)
    assert parent.info.status == "FINISHED" and len(children) == 6
    failed = [run for run in children if run.info.status == "FAILED"]
    assert len(failed) == 1 and sum(run.info.status == "FINISHED" for run in children) == 5
    assert failed[0].data.tags["lstm_bench.worker_exit"] == "its process was killed by SIGKILL"
    assert "its process was killed by SIGKILL" in output
    impl = failed[0].data.params["impl"]
    summary = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/comparison/summary.md")
    assert [[impl, "3", "1"]] == [row[:3] for row in markdown_rows(summary) if row[0] == impl]


def test_runs_orphaned_by_a_hard_kill_are_ended_by_the_next_entry_point(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    client.search_experiments(max_results=1)
    elsewhere = client.create_run("0", tags={"lstm_bench.hostname": "another-host", "lstm_bench.pid": "1",
                                             "lstm_bench.process_start": "1"})
    process = subprocess.Popen([sys.executable, "-m", "mlflow_project.train", "--impls", "native,scratch",
                                "--seeds", "0", "--max-epochs", "5000", "--workers", "2", "--progress-bar", "off"],
                               env=project_env(uri), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _running_child_pid(client, process)
        os.killpg(process.pid, signal.SIGKILL)  # the entry point and its workers, as a power cut would
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    orphans = [run for run in runs_of(uri) if run.info.status == "RUNNING" and run.info.run_id != elsewhere.info.run_id]
    assert len(orphans) >= 2  # the comparison and a child at least
    result = run_cli(["-m", "mlflow_project.report", "--output-dir", str(tmp_path)], project_env(uri), cwd=tmp_path)
    line = next(line for line in result.stderr.splitlines() if line.startswith("marked KILLED"))
    after = {run.info.run_id: run for run in runs_of(uri)}
    for orphan in orphans:
        assert after[orphan.info.run_id].info.status == "KILLED" and orphan.info.run_id in line
        assert after[orphan.info.run_id].data.tags["lstm_bench.orphaned"].startswith("its process (pid ")
    assert after[elsewhere.info.run_id].info.status == "RUNNING"  # another host's processes cannot be seen here
