"""Train a comparison's children one after another, or several at once, each in a forked process of its own.

At the tutorial's sizes a child is one busy Python thread (Lightning's loop costs more than the arithmetic), so
on a machine with C cores, C processes train C children in about the time of one. Each child is forked from the
parent when its turn comes: it inherits the imported modules (no second start-up of torch, Lightning and MLflow)
and the data, trains, sends its result back through a pipe, and exits.

Why a process per child and not a pool (``concurrent.futures.ProcessPoolExecutor``): a pool whose worker dies is
broken as a whole, its other workers are ended and their children lost with it, while here a process that dies
(the out-of-memory killer's SIGKILL, a crash) ends only its own child. The parent creates each child's run before
the fork, so it can end that run FAILED, saying how its process ended, and go on with the others.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

import mlflow
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from lstm_models import label_of

from .child_run import ChildResult, run_name, train_child
from .config import TrainConfig
from .interruption import HANDLED_SIGNALS, Interrupted, raise_if_signalled, record_signal

# How long children get to end their runs KILLED and exit after an interruption before they are killed.
WORKER_EXIT_SECONDS = 20.0
# How often the parent looks for a signal whose exception was lost while it waits (interruption).
POLL_SECONDS = 1.0
# In a child process: whether its run is being trained (and so must be ended KILLED on a signal).
_training = False


@dataclass
class Child:
    impl: str  # the implementation's label
    seed: int
    run_id: str
    process: multiprocessing.Process
    results: Connection
    result: ChildResult | None = None


def _on_signal_in_child(signum, frame) -> None:
    """SIGTERM comes from the parent ending the comparison, SIGINT from Ctrl+C reaching the whole process group."""
    if _training:
        record_signal(signum)  # should this exception be lost, the next batch raises it again
        raise Interrupted(signum)  # train_child ends its run KILLED, then _train_in_child exits
    os._exit(128 + signum)  # not training yet or any more: nothing to clean up


def _prepare_child() -> None:
    """Runs first in each child: its own signal handling, and no connection or thread pool shared with the
    parent or a sibling."""
    for handled in HANDLED_SIGNALS:
        signal.signal(handled, _on_signal_in_child)
    import torch

    # One thread per child: the children already use every core, and OpenMP's pool is not fork-safe.
    torch.set_num_threads(1)
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    # SQLAlchemy's advice after fork: drop the inherited pool without closing the parent's connections.
    for engine in list(getattr(SqlAlchemyStore, "_engine_map", {}).values()):
        engine.dispose(close=False)
    from mlflow.utils import request_utils

    # HTTP sessions (tracking servers) hold sockets; two processes must never share one.
    cached_session = getattr(request_utils, "_cached_get_request_session", None)
    if cached_session is not None:
        cached_session.cache_clear()


def _train_in_child(results: Connection, config: TrainConfig, impl: str, seed: int, run_id: str, datamodule,
                    dataset, parent: mlflow.entities.Run) -> None:
    global _training
    _prepare_child()
    _training = True
    try:
        result = train_child(config, impl, seed, datamodule, dataset, False, parent, run_id=run_id)
        raise_if_signalled()  # a signal whose exception was lost after the last batch: this child is done, leave
    except Interrupted as interruption:
        os._exit(interruption.exit_status)  # its run is ended KILLED
    _training = False
    results.send(result)
    results.close()


def _start(config: TrainConfig, impl: str, seed: int, datamodule, dataset, parent: mlflow.entities.Run) -> Child:
    name = run_name(impl, seed)
    run = mlflow.MlflowClient().create_run(parent.info.experiment_id, run_name=name, tags={
        MLFLOW_PARENT_RUN_ID: parent.info.run_id, MLFLOW_RUN_NAME: name})
    receiving, sending = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(
        target=_train_in_child, name=f"train-{name}",
        args=(sending, config, impl, seed, run.info.run_id, datamodule, dataset, parent))
    process.start()
    sending.close()  # the child's end: the parent's copy would keep the pipe open after the child is gone
    return Child(label_of(impl), seed, run.info.run_id, process, receiving)


def how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"its process was killed by {signal.Signals(-exitcode).name}"
    return f"its process exited with status {exitcode} before sending a result"


def _ended_without_result(child: Child) -> ChildResult:
    """A child whose process died: its run ends FAILED (unless the process ended it itself), saying why."""
    reason = how_it_ended(child.process.exitcode)
    client = mlflow.MlflowClient()
    run = client.get_run(child.run_id)
    status = run.info.status
    if status == "RUNNING":
        client.set_tag(child.run_id, "lstm_bench.worker_exit", reason)
        client.set_terminated(child.run_id, status="FAILED")
        status = "FAILED"
    return ChildResult(child.impl, child.seed, child.run_id, status=status, reason=reason)


def _collect(child: Child) -> None:
    """Read the child's result once it has been sent (before the process exits, a large one fills the pipe)."""
    try:
        if child.result is None and child.results.poll():
            child.result = child.results.recv()
    except (EOFError, OSError):
        pass  # the process ended without sending one


def train_children(config: TrainConfig, datamodule, dataset, progress_bar: bool,
                   parent: mlflow.entities.Run) -> Iterator[ChildResult]:
    """Yield each child's result as it finishes (in ``config.runs`` order when there is one worker)."""
    workers = config.worker_count
    if workers == 1:
        for impl, seed in config.runs:
            yield train_child(config, impl, seed, datamodule, dataset, progress_bar, parent)
        return
    waiting = list(config.runs)
    running: list[Child] = []
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                running.append(_start(config, *waiting.pop(0), datamodule, dataset, parent))
            wait([child.process.sentinel for child in running] + [child.results for child in running],
                 timeout=POLL_SECONDS)
            raise_if_signalled()
            for child in list(running):
                _collect(child)
                if not child.process.is_alive():
                    child.process.join()
                    _collect(child)
                    child.results.close()
                    running.remove(child)
                    yield child.result or _ended_without_result(child)
    finally:
        _stop(running)


def _stop(running: list[Child]) -> None:
    """After an interruption or an error: SIGTERM to every child still training (each ends its run KILLED), and
    SIGKILL to one still there after ``WORKER_EXIT_SECONDS``; a run its process could not end is ended here."""
    for child in running:
        if child.process.is_alive():
            child.process.terminate()
    deadline = time.monotonic() + WORKER_EXIT_SECONDS
    for child in running:
        child.process.join(max(0.0, deadline - time.monotonic()))
        if child.process.is_alive():
            child.process.kill()
            child.process.join()
        if mlflow.MlflowClient().get_run(child.run_id).info.status == "RUNNING":
            mlflow.MlflowClient().set_terminated(child.run_id, status="KILLED")
        child.results.close()
