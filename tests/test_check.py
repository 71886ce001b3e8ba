"""``python -m lstm_models.check``: each check a row, unsupported cases reported and not failed, exit statuses."""

import pytest

from lstm_models.check import FAIL, INFO, PASS, SKIPPED, UNSUPPORTED, conformance, main
from benchmarks.timing import conformance_failure


def _results(spec: str) -> dict[str, str]:
    return {check.name: check.result for check in conformance(spec)}


def test_a_hand_written_lstm_passes_every_check(capsys):
    results = _results("scratch")
    assert results["constructor"] == results["parameter names and shapes"] == PASS
    assert results["same initial weights under one seed"] == INFO
    assert all(results[name] == PASS for name in results if name.startswith(("float64", "float32")))
    assert results["torch.export (pt2 model)"] == PASS and results["cuda float64"] in (PASS, SKIPPED)
    assert main(["scratch"]) == 0
    out = capsys.readouterr().out
    assert "scratch (scratch): nn.LSTM's function on every case it supports" in out
    assert "float64 no_bias" in out and "largest difference: outputs" in out


def test_an_output_off_by_one_percent_fails_naming_the_case(capsys):
    results = _results("tests.implementations:ScaledLSTM")
    assert results["float64 initial_state"] == FAIL and results["constructor"] == PASS
    assert main(["scratch", "tests.implementations:ScaledLSTM"]) == 1
    assert "ScaledLSTM (tests.implementations:ScaledLSTM): differs from nn.LSTM" in capsys.readouterr().out


def test_a_case_it_refuses_is_unsupported_not_failed(capsys):
    results = _results("tests.implementations:NoUnbatchedLSTM")
    assert results["float64 unbatched_state_layers"] == UNSUPPORTED and results["float64 batch_first"] == PASS
    assert main(["tests.implementations:NoUnbatchedLSTM"]) == 0
    assert "ValueError: NoUnbatchedLSTM takes batched input only" in capsys.readouterr().out


def test_a_state_dict_that_does_not_load_fails():
    checks = conformance("tests.implementations:RenamedLSTM")
    assert [(check.name, check.result) for check in checks] == [("constructor", PASS),
                                                                 ("parameter names and shapes", FAIL)]
    assert "nn.LSTM's state dict does not load" in checks[1].detail


@pytest.mark.parametrize("spec, says", [
    ("no_such_package:LSTM", "cannot import no_such_package"),
    ("tests.implementations:raises_while_building", "cannot be built (RuntimeError: this implementation is not "
                                                    "finished)"),
])
def test_a_spec_that_cannot_be_imported_or_built_exits_2_in_one_line(spec, says, capsys):
    assert main([spec]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: SPEC {spec!r}: {says}") and "\n" not in error


def test_a_differing_implementation_is_not_timed_and_the_reason_names_the_case():
    reason = conformance_failure("tests.implementations:ScaledLSTM")
    assert reason.startswith("ScaledLSTM differs from nn.LSTM (float64 ") and reason.endswith("not timed")
    assert conformance_failure("scratch") is None
