"""A team server: `mlflow server` with MLflow's basic-auth app, a PostgreSQL backend store and served artifacts on
127.0.0.1. With credentials, a comparison and a benchmark log to it at the same time from separate processes, and
the report reads both; without them, every entry point stops with one line naming them; a user who may only read
an experiment reads its runs, and a comparison it starts there is refused in one line.

PostgreSQL comes from Debian's packages (.ci/run installs them when absent). The test runs its own cluster in a
temporary folder on a free port, as the `postgres` user when run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest

from tests.helpers import MlflowServer, all_runs, free_port, project_env, run_cli

pytestmark = pytest.mark.slow


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresCluster:
    """initdb + pg_ctl in a temporary folder; ``uri`` names a fresh database for MLflow."""

    def __init__(self, bindir: Path):
        self.bindir, self.port = bindir, free_port()
        # Not under pytest's tmp_path: that folder is private to root, and the server runs as `postgres`.
        self.folder = Path(tempfile.mkdtemp(prefix="lstm-bench-pg-"))
        self.folder.chmod(0o755)
        self.data = self.folder / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.folder, user=self.user)
        self.uri = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/mlflow"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "postgres.log"), "-w", "-t", "60", "start")
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-password-of-the-test"}
READER = {"MLFLOW_TRACKING_USERNAME": "reader", "MLFLOW_TRACKING_PASSWORD": "reader-password-of-the-test"}
# The auth app's own settings, as the README's team setup writes them: users in a database of their own, every
# user READ on what is not theirs unless given more.
AUTH_CONFIG = """[mlflow]
default_permission = READ
database_uri = sqlite:///{folder}/basic_auth.db
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)")
    pytest.importorskip("psycopg2", reason="psycopg2 (the test extra's psycopg2-binary) is needed by the server")
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth] (the test extra has it)")
    folder = tmp_path_factory.mktemp("team-server")
    (folder / "basic_auth.ini").write_text(AUTH_CONFIG.format(folder=folder))
    secrets = {"MLFLOW_AUTH_CONFIG_PATH": str(folder / "basic_auth.ini"),
               "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN["MLFLOW_TRACKING_PASSWORD"],
               "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-secret-of-the-test-only"}
    cluster = PostgresCluster(bindir)
    server = None
    try:
        cluster.start()
        server = MlflowServer(folder, backend_store_uri=cluster.uri, app_name="basic-auth", env=secrets)
        server.wait_ready()
        yield server
    finally:
        if server is not None:
            server.stop()
        cluster.stop()


def _as(credentials: dict[str, str], url: str) -> dict[str, str]:
    env = project_env(url, **credentials)
    if not credentials:
        env.pop("MLFLOW_TRACKING_USERNAME", None)
        env.pop("MLFLOW_TRACKING_PASSWORD", None)
    return env


def _admin_client(monkeypatch, url: str) -> mlflow.MlflowClient:
    for name, value in ADMIN.items():
        monkeypatch.setenv(name, value)
    return mlflow.MlflowClient(url)


ENTRY_POINTS = {
    "train": ["-m", "mlflow_project.train", "--impls", "native", "--seeds", "0", "--max-epochs", "2", "--progress-bar",
              "off"],
    "benchmark": ["-m", "mlflow_project.benchmark", "--impls", "native", "--shapes", "toy", "--threads", "1"],
    "report": ["-m", "mlflow_project.report"],
}


@pytest.mark.parametrize("credentials, refused", [
    ({}, "asks for credentials, and none are set"),
    ({**ADMIN, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}, "refused the credentials of 'admin'"),
], ids=["none", "wrong-password"])
@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_without_accepted_credentials_every_entry_point_stops_in_one_line(team_server, tmp_path, monkeypatch,
                                                                          entry_point, credentials, refused):
    client = _admin_client(monkeypatch, team_server.url)
    before = {run.info.run_id for run in all_runs(client)}
    done = run_cli(ENTRY_POINTS[entry_point], _as(credentials, team_server.url), cwd=tmp_path, timeout=30)
    assert done.returncode == 2, done.stderr[-3000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD: ") and refused in error
    assert "Traceback" not in done.stderr
    assert {run.info.run_id for run in all_runs(client)} == before  # nothing started, nothing RUNNING


def test_a_reader_reads_the_runs_and_its_comparison_is_refused(team_server, tmp_path, monkeypatch):
    client = _admin_client(monkeypatch, team_server.url)
    experiment_id = client.create_experiment(f"shared-{tmp_path.name}")
    shared = client.create_run(experiment_id, run_name="a-comparison-of-the-team")
    client.set_terminated(shared.info.run_id)
    from mlflow.server import get_app_client

    users = get_app_client("basic-auth", tracking_uri=team_server.url)
    if not any(user.username == READER["MLFLOW_TRACKING_USERNAME"] for user in _known_users(users)):
        users.create_user(READER["MLFLOW_TRACKING_USERNAME"], READER["MLFLOW_TRACKING_PASSWORD"])
    users.grant_user_permission(READER["MLFLOW_TRACKING_USERNAME"], "experiment", experiment_id, "READ")
    for name, value in READER.items():
        monkeypatch.setenv(name, value)
    (seen,) = mlflow.MlflowClient(team_server.url).search_runs([experiment_id])
    assert seen.info.run_name == "a-comparison-of-the-team"
    env = {**_as(READER, team_server.url), "MLFLOW_EXPERIMENT_ID": experiment_id}
    done = run_cli(ENTRY_POINTS["train"], env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr[-3000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD: 'reader' may not do this")
    assert "PERMISSION_DENIED" in error and "Traceback" not in done.stderr
    runs = _admin_client(monkeypatch, team_server.url).search_runs([experiment_id])
    assert [run.info.run_id for run in runs] == [shared.info.run_id]


def _known_users(users) -> list:
    try:
        return [users.get_user(READER["MLFLOW_TRACKING_USERNAME"])]
    except mlflow.exceptions.RestException:
        return []


def test_comparison_and_benchmark_from_separate_processes_to_a_postgres_server(team_server, tmp_path, monkeypatch):
    env = project_env(team_server.url, **ADMIN)
    for name, value in ADMIN.items():
        monkeypatch.setenv(name, value)
    commands = {
        "comparison": [sys.executable, "-m", "mlflow_project.train", "--impls", "native,scratch", "--seeds", "0",
                       "--max-epochs", "5", "--progress-bar", "off"],
        "benchmark": [sys.executable, "-m", "mlflow_project.benchmark", "--impls", "native,scratch", "--shapes",
                      "toy", "--device", "cpu", "--threads", "1", "--profile", "default"],
    }
    processes = {name: subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                 for name, command in commands.items()}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name}: {output[-3000:]}"

    mlflow.set_tracking_uri(team_server.url)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    by_role = {}
    for run in runs:
        by_role.setdefault(run.data.tags.get("lstm_bench.role"), []).append(run)
    assert len(by_role["comparison"]) == 1 and len(by_role["training"]) == 2 and len(by_role["benchmark"]) == 1
    assert all(run.info.status == "FINISHED" for run in runs)
    client = mlflow.MlflowClient(team_server.url)
    for child in by_role["training"]:
        assert len(client.get_metric_history(child.info.run_id, "train_loss")) == 5
        # Served artifacts: the model went through the server, and loads back through it.
        model = mlflow.pyfunc.load_model(child.data.tags["lstm_bench.model_uri"], model_config={"device": "cpu"})
        assert model.metadata.flavors["pytorch"]
    bench = by_role["benchmark"][0]
    assert "default.cpu.forward.toy.native.median_ms" in bench.data.metrics
    artifacts = {a.path for a in client.list_artifacts(bench.info.run_id, "benchmark")}
    assert "benchmark/results_default.json" in artifacts

    report = subprocess.run([sys.executable, "-m", "mlflow_project.report", "--output-dir", str(tmp_path / "r")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    parent_id = by_role["comparison"][0].info.run_id
    markdown = (tmp_path / "r" / parent_id / "report.md").read_text()
    assert "## Benchmarks by machine" in markdown and bench.data.tags["lstm_bench.hostname"] in markdown
