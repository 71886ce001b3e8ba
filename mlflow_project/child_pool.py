"""Train a comparison's children one after another, or several at once in forked worker processes.

At the tutorial's sizes a child is one busy Python thread (Lightning's loop costs more than the arithmetic), so
on a machine with C cores, C workers train C children in about the time of one. Workers are forked from the
parent: they inherit the imported modules (no second start-up of torch, Lightning and MLflow), the data, and
the parent run as MLflow's active run, so ``train_child`` opens its nested run exactly as it does in-process.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import mlflow

from .child_run import ChildResult, train_child
from .config import TrainConfig

# What every worker trains from, set just before the fork; workers read their inherited copy.
_shared_job: dict = {}


def _forget_parent_connections() -> None:
    """Runs first in each worker: no connection or thread pool is shared with the parent or a sibling."""
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
    impl, seed = run
    job = _shared_job
    return train_child(job["config"], impl, seed, job["datamodule"], job["dataset"], False, job["parent"])


def train_children(config: TrainConfig, datamodule, dataset, progress_bar: bool,
                   parent: mlflow.entities.Run) -> Iterator[ChildResult]:
    """Yield each child's result as it finishes (in ``config.runs`` order when there is one worker)."""
    workers = config.worker_count
    if workers == 1:
        for impl, seed in config.runs:
            yield train_child(config, impl, seed, datamodule, dataset, progress_bar, parent)
        return
    _shared_job.update(config=config, datamodule=datamodule, dataset=dataset, parent=parent)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_forget_parent_connections) as pool:
            yield from pool.imap_unordered(_train_in_worker, config.runs)
    finally:
        _shared_job.clear()
