"""The benchmark suite as a pytest plugin: grid selection options and parametrization.

    pytest benchmarks --benchmark-only --lstm-shapes toy,small --lstm-devices cpu,cuda
"""

from __future__ import annotations

import pytest
import torch

from lstm_models import IMPLEMENTATIONS, SpecError, UnknownNamesError, label_of, select_names, select_specs
from lstm_models.core.scratch_fast import fused_steps, huge_pages
from lstm_models.source import source_commit

from lstm_models.benchmarking.grid import DEVICES, PASSES, SHAPES, Shape, fits
from lstm_models.benchmarking.profiles import PROFILES, mismatch, settings_here

from benchmarks.timing import NotTimed, Passes, checked_passes


# (device, shape, impl) -> MiB above baseline, filled by test_peak_memory.py, printed by pytest_terminal_summary.
MEMORY_RESULTS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("lstm-bench")
    group.addoption("--lstm-impls", default="all",
                    help=f"comma-separated implementation specs: registered names ({', '.join(IMPLEMENTATIONS)}), "
                         "package.module:Attribute, either as label=SPEC; 'all' is every registered name but compiled")
    group.addoption("--lstm-shapes", default="all", help=f"comma-separated, from {', '.join(SHAPES)}")
    group.addoption("--lstm-devices", default="all", help="comma-separated, from cpu, cuda")
    group.addoption("--lstm-threads", type=int, default=0,
                    help="torch CPU threads while timing (default: torch's own choice, recorded)")
    group.addoption("--lstm-scaling", action="store_true", help="also run the sequence-length and hidden-size sweeps")
    group.addoption("--lstm-profile", default="default", choices=list(PROFILES),
                    help="the process profile this session runs under, recorded in the JSON; its settings must be in "
                         "the environment already (python -m mlflow_project.benchmark -P profile=... sets them)")


def _selection(config, option: str, allowed) -> list[str]:
    try:
        return list(select_names(config.getoption(option), allowed))
    except UnknownNamesError as error:
        raise pytest.UsageError(f"--{option.replace('_', '-')}: {error}") from None


def _implementations(config) -> list[str]:
    try:
        return list(select_specs(config.getoption("lstm_impls")))
    except SpecError as error:
        raise pytest.UsageError(f"--lstm-impls: spec {error}") from None


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark reads its options
def pytest_configure(config):
    # The suite times only when asked (--benchmark-only, or --benchmark-enable); a plain `pytest` runs each case
    # once, as the correctness check it also is, so that the test tiers never time a grid by accident.
    if not config.getoption("benchmark_only") and not config.getoption("benchmark_enable"):
        config.option.benchmark_disable = True
    # Checked here, before collection, a bad selection is pytest's one-line "ERROR: --lstm-shapes: ..." on every
    # run, not a collection traceback, and only when a benchmark module happens to be collected.
    _implementations(config)
    for option, allowed in (("lstm_devices", DEVICES), ("lstm_shapes", SHAPES)):
        _selection(config, option, allowed)
    wrong = mismatch(config.getoption("lstm_profile"))
    if wrong is not None:
        raise pytest.UsageError(f"--lstm-profile: {wrong}")


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record in the results' JSON the process profile and what it set, who gets huge pages, and the command: at
    `medium` and up such settings move the times (docs/scratch_fast.md, "Process settings")."""
    machine_info["profile"] = config.getoption("lstm_profile")
    machine_info["profile_settings"] = settings_here()
    machine_info["huge_pages"] = huge_pages.settings()
    machine_info["scratch_fast_loops"] = fused_steps.path()  # "fused", or "plain" where the build failed
    machine_info["torch_version"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["command"] = " ".join(["pytest", *config.invocation_params.args])
    machine_info["source"] = source_commit()  # the code timed; pytest-benchmark's commit_info is the folder's


def pytest_generate_tests(metafunc):
    if not metafunc.module.__name__.startswith("benchmarks."):
        return  # the unit tests parametrize themselves
    config = metafunc.config
    if "impl" in metafunc.fixturenames:
        metafunc.parametrize("impl", _implementations(config), ids=label_of)
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _selection(config, "lstm_devices", DEVICES))
    if "shape" in metafunc.fixturenames:
        metafunc.parametrize("shape", [SHAPES[name] for name in _selection(config, "lstm_shapes", SHAPES)],
                             ids=lambda shape: shape.name)
    if "pass_name" in metafunc.fixturenames:
        metafunc.parametrize("pass_name", PASSES)


def pytest_collection_modifyitems(config, items):
    """Drop the combinations that cannot exist (statquest beyond 1x1) instead of reporting them as skips."""
    def impossible(item) -> bool:
        params = getattr(getattr(item, "callspec", None), "params", {})
        shapes = [value for value in params.values() if isinstance(value, Shape)]
        return "impl" in params and any(not fits(params["impl"], shape) for shape in shapes)

    kept = [item for item in items if not impossible(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    _run_groups_together(items)


def _run_groups_together(items) -> None:
    """Order the grid group by group: the implementations of one (device, shape, pass) run one after another.

    pytest's own order is implementation-major, which puts native's medium case a minute or more before
    scratch_fast's; on a shared machine whose speed drifts, ratios then compare different machine states. In
    group order the cases being compared are seconds apart. Items outside the grid keep their places.
    """
    def group(item):
        params = getattr(getattr(item, "callspec", None), "params", {})
        if not {"impl", "shape", "pass_name"} <= set(params):
            return None
        return params.get("device", params.get("device_name", "")), params["shape"].name, params["pass_name"]

    places = [index for index, item in enumerate(items) if group(item) is not None]
    grid = [items[index] for index in places]
    first_seen = {}
    for item in grid:
        first_seen.setdefault(group(item), len(first_seen))
    grid.sort(key=lambda item: first_seen[group(item)])  # stable: implementations keep their order in a group
    for index, item in zip(places, grid):
        items[index] = item


def passes_or_skip(impl: str, shape: Shape, device: str) -> Passes:
    """The checked passes of ``impl`` at ``shape``, or the test skipped, saying why (``timing.NotTimed``)."""
    try:
        return checked_passes(impl, shape, device)
    except NotTimed as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="session")
def threads(request) -> int:
    """Fix the thread count for the whole session, so every result was measured under the same setting."""
    wanted = request.config.getoption("lstm_threads")
    if wanted > 0:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


@pytest.fixture
def device_name(device) -> str:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine (torch.cuda.is_available() is False)")
    return device


def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(MEMORY_RESULTS, {})
    if not results:
        return
    terminalreporter.section("peak memory of one training step above baseline (fresh process each)")
    for device, shape, impl in sorted(results):
        native = results.get((device, shape, "native"))
        ratio = f"{results[device, shape, impl] / native:6.2f}x native" if native else ""
        terminalreporter.write_line(f"{device:5} {shape:7} {impl:13} {results[device, shape, impl]:9.1f} MiB  {ratio}")
