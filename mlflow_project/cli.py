"""What every entry point shares: parameters declared once, their command line, their errors.

Each entry point's parameters are one frozen dataclass whose fields are made with ``parameter``: the text default
(as ``MLproject`` and the command line give it), the help, and the function that checks a text value and turns it
into the field's value. The command line (``add_arguments``), the checking (``parse_config``), the MLflow params
(``as_params``) and the README's parameter tables (``markdown_parameters``) are all derived from those fields, and a
test holds ``MLproject`` to them.

MLflow passes MLproject parameters through as text and checks nothing, so every value is checked here before any
run starts. A bad value raises ``ConfigError``: one line naming the parameter and what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from typing import Any, Callable, Iterable, TypeVar

EXIT_BAD_PARAMETER = 2

Config = TypeVar("Config")


class ConfigError(ValueError):
    """A parameter value that is not allowed; ``str()`` is the one-line message for the user."""

    def __init__(self, parameter: str, allowed: str, value: object = ...):
        self.parameter = parameter
        super().__init__(f"{parameter}: {allowed}" if value is ... else f"{parameter}: {allowed}, got {value!r}")


def parameter(default: str, help: str, parse: Callable[[str, str], Any], allowed: str = "") -> Any:
    """A dataclass field for an entry-point parameter. ``parse(name, text)`` checks ``text`` and returns the value
    or raises ConfigError; ``default`` is the text default; ``allowed`` is the README's column (``help`` if empty)."""
    return dataclasses.field(default_factory=lambda: parse("", default),
                             metadata={"text": default, "help": help, "parse": parse, "allowed": allowed or help})


def parameters(config_class) -> tuple[dataclasses.Field, ...]:
    return tuple(spec for spec in dataclasses.fields(config_class) if "parse" in spec.metadata)


def option(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def add_arguments(parser: argparse.ArgumentParser, config_class) -> argparse.ArgumentParser:
    """One option per parameter, taking text (checked later by ``parse_config``, for one-line errors)."""
    for spec in parameters(config_class):
        parser.add_argument(option(spec.name), dest=spec.name, default=spec.metadata["text"],
                            metavar=spec.name.upper(), help=spec.metadata["help"])
    return parser


def parse_config(config_class: type[Config], raw: dict[str, str]) -> Config:
    """Check every raw (text) parameter, in declaration order, and build the configuration; raises ConfigError on
    the first bad one."""
    values = {}
    for spec in parameters(config_class):
        values[spec.name] = spec.metadata["parse"](spec.name, raw.get(spec.name, spec.metadata["text"]))
    return config_class(**values)


def raw_arguments(args: argparse.Namespace, config_class) -> dict[str, str]:
    return {spec.name: getattr(args, spec.name) for spec in parameters(config_class)}


def as_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def as_params(config) -> dict[str, str]:
    """The configuration as MLflow parameters, under the MLproject's names."""
    return {spec.name: as_text(getattr(config, spec.name)) for spec in parameters(type(config))}


def markdown_parameters(config_class) -> str:
    """The README's table of an entry point's parameters."""
    rows = ["| parameter | default | allowed |", "|---|---|---|"]
    for spec in parameters(config_class):
        default = spec.metadata["text"]
        rows.append(f"| `{spec.name}` | {f'`{default}`' if default else '(empty)'} | {spec.metadata['allowed']} |")
    return "\n".join(rows)


# --- Parsers: (parameter name, text) -> value, or ConfigError ----------------------------------------------------

def _number(name: str, text: str, convert: Callable[[str], Any], accept: Callable[[Any], bool], allowed: str):
    try:
        value = convert(str(text).strip())
    except ValueError:
        raise ConfigError(name, allowed, text) from None
    if not accept(value):
        raise ConfigError(name, allowed, text)
    return value


def positive_int(name: str, text: str) -> int:
    return _number(name, text, int, lambda value: value >= 1, "must be a positive integer")


def non_negative_int(name: str, text: str) -> int:
    return _number(name, text, int, lambda value: value >= 0, "must be 0 or a positive integer")


def positive_float(name: str, text: str) -> float:
    return _number(name, text, float, lambda value: math.isfinite(value) and value > 0, "must be a positive number")


def fraction(name: str, text: str) -> float:
    return _number(name, text, float, lambda value: 0.0 <= value < 1.0, "must be a number in [0, 1)")


def count_or_auto(name: str, text: str) -> str:
    text = str(text).strip()
    if text == "auto" or (text.isdigit() and int(text) >= 1):
        return text
    raise ConfigError(name, "must be 'auto' or a positive integer", text)


def text(name: str, value: str) -> str:
    return str(value or "").strip()


def one_of(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        text = str(text).strip()
        if text not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}", text)
        return text
    return parse


def switch(name: str, text: str) -> bool:
    value = str(text).strip().lower()
    if value not in ("on", "off", "true", "false", "1", "0"):
        raise ConfigError(name, "must be on or off", text)
    return value in ("on", "true", "1")


def names_from(allowed: Callable[[], Iterable[str]]) -> Callable[[str, str], tuple[str, ...]]:
    """A comma-separated selection from ``allowed()`` (or 'all'), checked by ``lstm_models.select_names``."""
    def parse(name: str, text: str) -> tuple[str, ...]:
        from lstm_models import UnknownNamesError, select_names

        choices = tuple(allowed())
        try:
            return select_names(text, choices)
        except UnknownNamesError:
            raise ConfigError(name, f"must be 'all' or comma-separated names from {', '.join(choices)}",
                              text) from None
    return parse


def implementation_specs(name: str, text: str) -> tuple[str, ...]:
    """Comma-separated implementation specs (registered names, ``package.module:Attribute``, either after
    ``label=``), or 'all' (``lstm_models.DEFAULT_SELECTION``); each resolved and built once, so that a bad one is
    named here, before any run starts. One that cannot run on this machine (``compiled`` without a compiler) is
    let through: a benchmark skips it, saying why."""
    from lstm_models import ImplementationUnavailable, SpecError, select_specs
    from lstm_models.check import constructor

    try:
        specs = select_specs(text)
        for spec in specs:
            try:
                constructor(spec)
            except ImplementationUnavailable:
                pass
    except SpecError as error:
        raise ConfigError(name, f"spec {error}") from None
    return specs


SPECS_HELP = ("comma-separated implementation specs: registered names ({registered}), package.module:Attribute "
              "(a class or factory with nn.LSTM's constructor arguments), either as label=SPEC; 'all' is every "
              "registered name but compiled")


def experiment_parameter():
    """The ``experiment`` parameter: the MLflow experiment of the entry point's runs (``experiment``)."""
    return parameter("", "MLflow experiment for the runs (empty: MLFLOW_EXPERIMENT_NAME, or the experiment mlflow run "
                         "was given, else lstm-bench)", text,
                     allowed="MLflow experiment; empty: `MLFLOW_EXPERIMENT_NAME`, or `mlflow run`'s "
                             "`--experiment-name`, else `lstm-bench`")


def implementations_parameter():
    """The ``impls`` parameter, as every entry point that selects implementations declares it."""
    from lstm_models import IMPLEMENTATIONS

    return parameter("all", SPECS_HELP.format(registered=", ".join(IMPLEMENTATIONS)), implementation_specs,
                     allowed="comma-separated implementation specs (registered names, `package.module:Attribute`, "
                             "either as `label=SPEC`), or `all` (every registered name but `compiled`)")


# --- Refusing a run ----------------------------------------------------------------------------------------------

def fail_launching_run(message: str) -> None:
    """Under ``mlflow run`` the project run already exists: end it FAILED, with the reason, before exiting."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_tag(run_id, "lstm_bench.error", message)
    client.set_terminated(run_id, status="FAILED")


def refuse(error: Exception, fail_run: bool = True) -> int:
    """A bad parameter (or an unreachable store): one line on stderr, the launching run FAILED, status 2."""
    print(f"error: {error}", file=sys.stderr)
    if fail_run:
        fail_launching_run(str(error))
    return EXIT_BAD_PARAMETER


def refuse_if_refused(error: Exception) -> int:
    """A request the tracking server refused (credentials, permission) as ``refuse``'s one line and status 2; any
    other error is raised again."""
    from .tracking_store import refusal

    refused = refusal(error)
    if refused is None:
        raise error
    return refuse(refused, fail_run=False)  # a server that refused this will not let us mark its run either
