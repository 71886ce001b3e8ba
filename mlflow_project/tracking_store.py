"""Make the tracking store ready before anything is logged: a reachable server, or an initialised sqlite file.

MLflow's HTTP client retries a refused or timed-out request with exponential back-off for minutes before giving up.
Every entry point calls ``prepare_tracking_store`` first, which starts with one short probe of the server's
``/health`` endpoint, and a one-line error naming the URI when it does not answer. The same module caps MLflow's own
retries for the rest of the process (unless the user set them), so a server that goes away mid-run also fails in
seconds.

A server that asks for credentials (MLflow's basic-auth app) is asked once for what it will show these
credentials; a refusal is a one-line error naming ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``
instead of a traceback. ``refusal`` turns a later refusal (a user who may read but not write) into one line too.

For a sqlite store, ``prepare_tracking_store`` creates the tables before anything else, through MLflow's store
opened under a file lock (``sqlite_store``, registered with MLflow for ``sqlite://``).
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request

PROBE_TIMEOUT_SECONDS = 5.0
# MLflow's defaults are 7 retries with a back-off factor of 2 (minutes in all); these keep transient blips
# covered while bounding a dead server to well under 30 seconds.
HTTP_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                       "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


CREDENTIALS = "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD"


class TrackingServerUnreachable(RuntimeError):
    """The store cannot be used (no answer, or credentials refused); ``str()`` is the one-line message."""


def refusal(error: Exception, uri: str | None = None) -> TrackingServerUnreachable | None:
    """The one-line message for a request the server refused for lack of credentials or of permission."""
    code = getattr(error, "error_code", "")
    if code not in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return None
    uri = uri or tracking_uri()
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if code == "UNAUTHENTICATED" and not user:
        return TrackingServerUnreachable(f"{CREDENTIALS}: the server at {uri} asks for credentials, and none are set")
    if code == "UNAUTHENTICATED":
        return TrackingServerUnreachable(f"{CREDENTIALS}: the server at {uri} refused the credentials of {user!r}")
    return TrackingServerUnreachable(f"{CREDENTIALS}: {user or 'this user'!r} may not do this on {uri} "
                                     "(PERMISSION_DENIED); ask the experiment's owner for EDIT permission")


def tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def limit_http_retries() -> None:
    """Cap MLflow's HTTP retries for this process and its children, unless the user chose values."""
    for name, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)


def check_tracking_server(uri: str | None = None) -> None:
    """Raise ``TrackingServerUnreachable`` when an http(s) tracking URI does not answer its health probe."""
    limit_http_retries()
    uri = uri or tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return  # a database URI: a failure there is immediate and its message already names the file
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_SECONDS) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = str(getattr(error, "reason", error))
    raise TrackingServerUnreachable(
        f"MLFLOW_TRACKING_URI: no MLflow tracking server answers at {uri} ({reason}); start it, or unset "
        "MLFLOW_TRACKING_URI to log to sqlite:///mlflow.db")


def check_credentials(uri: str) -> None:
    """Raise ``TrackingServerUnreachable`` when the server refuses this process's credentials (or their absence)."""
    import mlflow

    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except mlflow.exceptions.MlflowException as error:
        refused = refusal(error, uri)
        if refused is None:
            raise
        raise refused from None


def prepare_tracking_store() -> None:
    """Check the server and its credentials (see ``check_tracking_server``), or create a sqlite store's tables
    (one process at a time: ``sqlite_store``)."""
    uri = tracking_uri()
    check_tracking_server(uri)
    if uri.startswith(("http://", "https://")):
        check_credentials(uri)
        return
    import mlflow

    # "Creating initial MLflow database tables..." says nothing a user needs, and would sit between the command
    # and its own output.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    mlflow.MlflowClient(uri).search_experiments(max_results=1)  # creates and migrates the tables


def tracking_store_problem() -> TrackingServerUnreachable | None:
    """``prepare_tracking_store``, with an unreachable server returned (for a one-line error) instead of raised;
    then the runs that hard-killed processes of this host left RUNNING are ended (``orphans``)."""
    try:
        prepare_tracking_store()
    except TrackingServerUnreachable as error:
        return error
    from .orphans import mark_orphaned_runs

    mark_orphaned_runs()
    return None
