"""Runs orphaned by a hard kill: each run records the process that owns it, and each entry point, as it starts,
ends the RUNNING runs of its own host whose process is gone.

A process killed outright (SIGKILL, a power cut, a lost node) ends no run, and MLflow has no notion of a run's
owner: the run stays RUNNING for ever. Every run this project logs is tagged with its host, its process id and that
process's start time (a pid is reused; the pair is not). Only this host's runs are judged: another host's processes
cannot be seen from here.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import mlflow

PID_TAG, START_TAG, HOST_TAG = "lstm_bench.pid", "lstm_bench.process_start", "lstm_bench.hostname"
ORPHANED_TAG = "lstm_bench.orphaned"


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), '' where that cannot be read, None if the
    process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name before ')' may hold spaces
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    return ""


def process_tags() -> dict[str, str]:
    """What identifies this process later: host, pid and start time."""
    return {HOST_TAG: platform.node(), PID_TAG: str(os.getpid()), START_TAG: process_start(os.getpid()) or ""}


def is_gone(pid: int, start: str) -> bool:
    now = process_start(pid)
    return now is None or bool(start and now and now != start)


def mark_orphaned_runs() -> list[mlflow.entities.Run]:
    """End KILLED, with a tag saying why, every RUNNING run of this host whose process is gone; one line names them."""
    host = platform.node()
    client = mlflow.MlflowClient()
    running = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                 filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'")
    orphaned = []
    for run in running:
        tags = run.data.tags
        if not tags.get(PID_TAG, "").isdigit() or not is_gone(int(tags[PID_TAG]), tags.get(START_TAG, "")):
            continue
        try:
            client.set_tag(run.info.run_id, ORPHANED_TAG, f"its process (pid {tags[PID_TAG]} on {host}) ended "
                                                          f"without ending it; marked by pid {os.getpid()}")
            client.set_terminated(run.info.run_id, status="KILLED")
        except mlflow.exceptions.MlflowException:
            continue  # not ours to change (a read-only user on a team server)
        orphaned.append(run)
    if orphaned:
        names = ", ".join(f"{run.info.run_name} ({run.info.run_id})" for run in orphaned)
        print(f"marked KILLED {len(orphaned)} run(s) whose process on {host} is gone: {names}", file=sys.stderr)
    return orphaned
