"""A team server: `mlflow server` with a PostgreSQL backend store and served artifacts on 127.0.0.1, with a
comparison and a benchmark logged to it at the same time from separate processes, and the report reading both.

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

from tests.helpers import MlflowServer, free_port, project_env

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


@pytest.fixture
def team_server(tmp_path):
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)")
    pytest.importorskip("psycopg2", reason="psycopg2 (the test extra's psycopg2-binary) is needed by the server")
    cluster = PostgresCluster(bindir)
    server = None
    try:
        cluster.start()
        server = MlflowServer(tmp_path, backend_store_uri=cluster.uri)
        server.wait_ready()
        yield server
    finally:
        if server is not None:
            server.stop()
        cluster.stop()


def test_comparison_and_benchmark_from_separate_processes_to_a_postgres_server(team_server, tmp_path):
    env = project_env(team_server.url)
    commands = {
        "comparison": [sys.executable, "-m", "mlflow_project.train", "--impls", "native,scratch", "--seeds", "0",
                       "--max-epochs", "5", "--progress-bar", "off"],
        "benchmark": [sys.executable, "-m", "mlflow_project.benchmark", "--impls", "native,scratch", "--shapes",
                      "toy", "--device", "cpu", "--threads", "1"],
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
    assert bench.data.metrics["cpu.forward.toy.native.median_ms"] > 0
    assert {a.path for a in client.list_artifacts(bench.info.run_id, "benchmark")} >= {"benchmark/results.json"}

    report = subprocess.run([sys.executable, "-m", "mlflow_project.report", "--output-dir", str(tmp_path / "r")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    parent_id = by_role["comparison"][0].info.run_id
    markdown = (tmp_path / "r" / parent_id / "report.md").read_text()
    assert "## Benchmarks by machine" in markdown and bench.data.tags["lstm_bench.hostname"] in markdown
