"""Implementation specs: registered names, ``package.module:Attribute``, labels; and the one-line refusal of each
way a spec can be bad, from every surface that takes one."""

import pytest
import torch

from lstm_models import (DEFAULT_SELECTION, IMPLEMENTATIONS, SpecError, build_lstm, label_of, select_specs,
                         takes_sizes)
from mlflow_project import benchmark, train

BAD_SPECS = {
    # case: (spec, what the one line must say)
    "unimportable": ("no_such_package.lstm:LSTM", "cannot import no_such_package.lstm"),
    "missing_attribute": ("tests.implementations:Absent", "tests.implementations has no attribute 'Absent'"),
    "not_callable": ("tests.implementations:NOT_CALLABLE", "NOT_CALLABLE is a int, not a class or factory"),
    "raises_while_building": ("tests.implementations:raises_while_building", "this implementation is not finished"),
    "not_a_module": ("tests.implementations:builds_a_number", "built a int, not a torch.nn.Module"),
    "unknown_name": ("lstm9", "unknown LSTM implementation"),
}


def test_registered_names_and_the_default_selection():
    assert set(IMPLEMENTATIONS) >= {"native", "scratch", "scratch_fast", "statquest", "compiled"}
    assert select_specs("all") == DEFAULT_SELECTION and "compiled" not in DEFAULT_SELECTION


def test_a_spec_names_a_class_with_nn_lstms_arguments_and_a_label_names_it():
    module = build_lstm("mine=torch.nn:LSTM", 3, 4, num_layers=2, batch_first=True)
    assert isinstance(module, torch.nn.LSTM) and module.batch_first and module.num_layers == 2
    assert label_of("mine=torch.nn:LSTM") == "mine" and label_of("torch.nn:LSTM") == "LSTM"
    assert label_of("fast=scratch_fast") == "fast" and label_of(" scratch ") == "scratch"


def test_a_selection_keeps_the_order_and_drops_repeated_labels():
    assert select_specs("scratch, tests.implementations:ScaledLSTM, scratch") == (
        "scratch", "tests.implementations:ScaledLSTM")


def test_sizes_a_builder_refuses_are_known_before_building():
    assert not takes_sizes("statquest", hidden_size=2) and takes_sizes("statquest", hidden_size=1)
    assert takes_sizes("torch.nn:LSTM", hidden_size=2)  # a builder that says nothing takes every size


@pytest.mark.parametrize("case", [case for case in BAD_SPECS if case != "raises_while_building"])
def test_a_bad_spec_is_one_error_naming_it(case):
    spec, says = BAD_SPECS[case]
    with pytest.raises(SpecError) as caught:
        build_lstm(spec, 1, 1)
    assert caught.value.spec == spec and says in str(caught.value) and "\n" not in str(caught.value)


def test_an_error_the_users_builder_raises_is_raised_as_it_is():
    with pytest.raises(RuntimeError, match="this implementation is not finished"):
        build_lstm(BAD_SPECS["raises_while_building"][0], 1, 1)


ENTRY_POINT_CASES = [(train, case) for case in BAD_SPECS] + [(benchmark, "not_a_module")]  # one parser serves both


@pytest.mark.parametrize("entry_point, case", ENTRY_POINT_CASES,
                         ids=[f"{entry_point.__name__.rpartition('.')[2]}-{case}" for entry_point, case in
                              ENTRY_POINT_CASES])
def test_entry_points_refuse_a_bad_spec_in_one_line_and_start_no_run(entry_point, case, sqlite_store, tmp_path,
                                                                    capsys):
    spec, says = BAD_SPECS[case]
    assert entry_point.main(["--impls", f"native,{spec}"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: impls: spec {spec!r}") and says in error and "\n" not in error
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store was touched: no run at all


def test_help_lists_the_registered_names(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(name in shown for name in IMPLEMENTATIONS) and "package.module:Attribute" in shown


def test_compiled_without_a_compiler_is_unavailable_and_the_benchmark_skips_it(monkeypatch):
    from benchmarks.timing import conformance_failure
    from lstm_models import ImplementationUnavailable

    monkeypatch.setenv("CXX", "/no/such/compiler")
    with pytest.raises(ImplementationUnavailable, match="^compiled: torch.compile needs a C\\+\\+ compiler"):
        build_lstm("compiled", 2, 3)
    conformance_failure.cache_clear()
    try:
        assert conformance_failure("compiled").startswith("compiled: torch.compile needs a C++ compiler")
    finally:
        conformance_failure.cache_clear()
