"""A sqlite tracking store that is created under a file lock: MLflow's own, registered again for ``sqlite://``.

MLflow creates a sqlite store's tables (and migrates them) the first time any process opens it, without a lock.
Processes that open a new store at the same moment, such as four ``mlflow run .`` started together (``mlflow run``
opens the store to create its run before the entry point starts), run the same migrations at once, and some fail
(``alembic ... Online migration expected to match one row``, ``table ... already exists``). MLflow finds tracking
stores by scheme through the ``mlflow.tracking_store`` entry-point group, and a plugin's builder replaces the
built-in one for its scheme: this package registers this builder for ``sqlite``, so every MLflow process in an
environment where it is installed (``mlflow run``, ``mlflow ui``, a script) opens a sqlite store one at a time
per file. Everything else is MLflow's store, unchanged.
"""

from __future__ import annotations

from filelock import FileLock


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///`` URI, or None (an in-memory store, another scheme)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def lock_path(uri: str) -> str | None:
    path = sqlite_path(uri)
    return None if path is None else f"{path}.lock"


def locked_sqlite_store(store_uri: str, artifact_uri: str | None = None):
    """MLflow's own builder for database stores (what it registers for ``sqlite``), called under the store's lock."""
    from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store

    lock = lock_path(store_uri)
    if lock is None:
        return _get_sqlalchemy_store(store_uri, artifact_uri)
    with FileLock(lock):
        return _get_sqlalchemy_store(store_uri, artifact_uri)
