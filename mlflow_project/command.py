"""``lstm-bench``: one console command for the entry points, ``lstm-bench train|benchmark|report|check ...``.

Each subcommand is the module's own command line (``python -m mlflow_project.train`` and so on): the options after
the subcommand go to it unchanged, and ``lstm-bench SUBCOMMAND --help`` shows its help.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "train": ("mlflow_project.train", "train implementations over seeds and compare them in MLflow (MLproject main)"),
    "benchmark": ("mlflow_project.benchmark", "time forward and backward passes and log them to MLflow"),
    "report": ("mlflow_project.report", "write a report of a finished comparison"),
    "results": ("mlflow_project.results_page", "turn benchmark results into docs/results.md and the README's headline"),
    "check": ("lstm_models.check", "check implementations against nn.LSTM, point by point"),
    "parity": ("lstm_models.core.parity", "print each implementation's largest float64 difference from nn.LSTM"),
}


def usage() -> str:
    lines = ["usage: lstm-bench SUBCOMMAND [options]   (lstm-bench SUBCOMMAND --help for its options)", "",
             "subcommands:"]
    lines += [f"  {name:10} {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in SUBCOMMANDS:
        print(f"error: SUBCOMMAND: must be one of {', '.join(SUBCOMMANDS)}, got {argv[0]!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
