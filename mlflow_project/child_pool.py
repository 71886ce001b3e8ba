"""Train a comparison's children one after another, or several at once in forked worker processes.

At the tutorial's sizes a child is one busy Python thread (Lightning's loop costs more than the arithmetic), so
on a machine with C cores, C workers train C children in about the time of one. Workers are forked from the
parent: they inherit the imported modules (no second start-up of torch, Lightning and MLflow), the data, and
the parent run as MLflow's active run, so ``train_child`` opens its nested run exactly as it does in-process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator

import mlflow

from .child_run import ChildResult, train_child
from .config import TrainConfig
from .interruption import HANDLED_SIGNALS, Interrupted, raise_if_signalled, record_signal

# How long workers get to end their runs and exit before they are killed, and the pool's threads to stop.
WORKER_EXIT_SECONDS = 20.0
POOL_THREADS_SECONDS = 5.0
# What every worker trains from, set just before the fork; workers read their inherited copy.
_shared_job: dict = {}
# In a worker: whether a child run is being trained (and so must be ended KILLED on a signal).
_training = False


def _on_signal_in_worker(signum, frame) -> None:
    """SIGTERM comes from the pool being torn down, SIGINT from Ctrl+C reaching the whole process group."""
    if _training:
        record_signal(signum)  # should this exception be lost, the next batch raises it again
        raise Interrupted(signum)  # train_child ends its run KILLED, then _train_in_worker exits
    os._exit(128 + signum)  # idle: nothing to clean up


def _prepare_worker() -> None:
    """Runs first in each worker: its own signal handling, and no connection or thread pool shared with the
    parent or a sibling."""
    for handled in HANDLED_SIGNALS:
        signal.signal(handled, _on_signal_in_worker)
    import torch

    # One thread per worker: the workers already use every core, and OpenMP's pool is not fork-safe.
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


def _train_in_worker(run: tuple[str, int]) -> ChildResult:
    global _training
    impl, seed = run
    job = _shared_job
    _training = True
    try:
        result = train_child(job["config"], impl, seed, job["datamodule"], job["dataset"], False, job["parent"])
        raise_if_signalled()  # a signal whose exception was lost after the last batch: this child is done, leave
        return result
    except Interrupted as interruption:
        # The run is ended KILLED; the pool is being torn down and waits for this process to go.
        os._exit(interruption.exit_status)
    finally:
        _training = False


def _next_result(results) -> ChildResult:
    """Wait for the next finished child, looking every second for a signal whose exception was lost."""
    while True:
        try:
            return results.next(timeout=1.0)
        except multiprocessing.TimeoutError:
            raise_if_signalled()


def train_children(config: TrainConfig, datamodule, dataset, progress_bar: bool,
                   parent: mlflow.entities.Run) -> Iterator[ChildResult]:
    """Yield each child's result as it finishes (in ``config.runs`` order when there is one worker)."""
    workers = config.worker_count
    if workers == 1:
        for impl, seed in config.runs:
            yield train_child(config, impl, seed, datamodule, dataset, progress_bar, parent)
        return
    _shared_job.update(config=config, datamodule=datamodule, dataset=dataset, parent=parent)
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_prepare_worker)
    every_child_done = False
    try:
        results = pool.imap_unordered(_train_in_worker, config.runs)
        for _ in config.runs:
            yield _next_result(results)
        every_child_done = True
    finally:
        _stop_workers(pool, every_child_done)
        _shared_job.clear()


def _stop_workers(pool, every_child_done: bool) -> None:
    """End the pool's workers and threads without waiting forever on any of them.

    ``Pool.terminate`` (what ``with Pool`` does on exit) first takes the task queue's lock, then sends SIGTERM,
    then joins every worker without a time limit: a worker idle on that lock, or one that died holding it, can
    keep it waiting for ever. So it runs in a daemon thread given a few seconds (the process may exit without
    it), and the workers are ended here: after the last child they are told to exit (``close``: each reads a
    sentinel); after an interruption or an error they get SIGTERM, which ends a child being trained KILLED. A
    worker still there after ``WORKER_EXIT_SECONDS`` is killed.

    After an interruption ``terminate`` starts first: its first step stops the pool from replacing workers that
    exit. Without that, a replacement forked during the shutdown took the next queued child and trained it
    behind the interruption's back, writing to the store while the comparison was being ended (found on
    2026-11-25 as "database is locked" and a 20-second wait). Workers that appear all the same are ended too.
    """
    stopper = threading.Thread(target=pool.terminate, name="stop-worker-pool", daemon=True)
    if every_child_done:
        pool.close()
    else:
        stopper.start()
    deadline = time.monotonic() + WORKER_EXIT_SECONDS
    ended: set[int] = set()
    while workers := [worker for worker in multiprocessing.active_children() if worker.pid not in ended]:
        if not every_child_done:
            for worker in workers:
                worker.terminate()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()
            ended.add(worker.pid)
    if every_child_done:
        stopper.start()
    stopper.join(POOL_THREADS_SECONDS)
