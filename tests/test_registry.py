"""The public contract: registry names, errors for unknown names and unsupported options, equal starts."""

import pytest
import torch
from torch import nn

from lstm_models import (DEFAULT_SELECTION, IMPLEMENTATIONS, UnknownNamesError, build_lstm, initialize, lstm_inputs,
                         lstm_state_dict, select_names)


def test_registered_names():
    assert {"native", "scratch", "statquest"} <= set(IMPLEMENTATIONS)


def test_native_is_torch_lstm():
    assert type(build_lstm("native", 2, 3)) is nn.LSTM


def test_unknown_name_lists_registered_names():
    with pytest.raises(ValueError) as error:
        build_lstm("transformer", 1, 1)
    message = str(error.value)
    assert "transformer" in message
    for name in IMPLEMENTATIONS:
        assert name in message


@pytest.mark.parametrize("impl", [i for i in IMPLEMENTATIONS if i != "native"])
@pytest.mark.parametrize("option, value", [("bidirectional", True), ("proj_size", 1), ("dropout", 0.5)])
def test_unsupported_option_is_named(impl, option, value):
    with pytest.raises(ValueError, match=option):
        build_lstm(impl, 1, 1, **{option: value})


@pytest.mark.parametrize("impl", [i for i in IMPLEMENTATIONS if i != "native"])
def test_off_values_of_unsupported_options_are_accepted(impl):
    build_lstm(impl, 1, 1, dropout=0.0, bidirectional=False, proj_size=0)


@pytest.mark.parametrize("bad", [("input_size", 2), ("hidden_size", 3), ("num_layers", 2)])
def test_statquest_refuses_other_sizes(bad):
    sizes = {"input_size": 1, "hidden_size": 1, "num_layers": 1, bad[0]: bad[1]}
    with pytest.raises(ValueError, match=bad[0]):
        build_lstm("statquest", **sizes)


@pytest.mark.parametrize("impl", [i for i in IMPLEMENTATIONS if i not in ("native", "statquest")])
def test_zero_hidden_size_is_refused(impl):
    with pytest.raises(ValueError, match="hidden_size"):
        build_lstm(impl, 2, 0)


@pytest.mark.parametrize("impl", [i for i in IMPLEMENTATIONS if i != "native"])
def test_same_keys_and_shapes_as_native(impl):
    sizes = (1, 1, 1) if impl == "statquest" else (3, 4, 2)
    native = build_lstm("native", *sizes)
    assert {k: v.shape for k, v in lstm_state_dict(build_lstm(impl, *sizes)).items()} == \
        {k: v.shape for k, v in native.state_dict().items()}


def _initial_outputs(impl, sizes, init):
    torch.manual_seed(0)
    module = initialize(build_lstm(impl, *sizes), init)
    x, _ = lstm_inputs(5, 3, sizes[0], sizes[1], sizes[2], seed=1)
    with torch.no_grad():
        output, (h_n, c_n) = module(x)
    return output, h_n, c_n


@pytest.mark.parametrize("init", ["lstm", "statquest"])
@pytest.mark.parametrize("sizes", [(1, 1, 1), (3, 4, 2)], ids=["toy", "small"])
def test_same_seed_same_start(sizes, init):
    impls = [i for i in DEFAULT_SELECTION if i != "statquest" or sizes == (1, 1, 1)]  # compiled: test_compiled.py
    reference = _initial_outputs("native", sizes, init)
    for impl in impls:
        for got, want in zip(_initial_outputs(impl, sizes, init), reference):
            # float32's default tolerances: oneDNN's fused LSTM and a loop of PyTorch operators round differently,
            # and differently again per CPU (N(0, 1) weights gave 1.5e-7 on an AVX-512 Xeon). Weights that were not
            # the same would differ by tenths.
            torch.testing.assert_close(got, want, msg=f"{impl} starts differently")


@pytest.mark.parametrize("impl", [i for i in IMPLEMENTATIONS if i != "statquest"])
def test_same_seed_bit_identical_weights(impl):
    torch.manual_seed(3)
    native = nn.LSTM(3, 4, 2)
    torch.manual_seed(3)
    other = build_lstm(impl, 3, 4, 2)
    for (key, want), (other_key, got) in zip(native.state_dict().items(), lstm_state_dict(other).items()):
        assert key == other_key
        assert torch.equal(got, want), key


def test_statquest_init_is_tutorial_distribution():
    torch.manual_seed(0)
    module = initialize(build_lstm("scratch", 4, 64, 2), "statquest")
    weights = torch.cat([p.detach().flatten() for n, p in module.named_parameters() if n.startswith("weight")])
    biases = [p for n, p in module.named_parameters() if n.startswith("bias")]
    assert all(torch.count_nonzero(b) == 0 for b in biases)
    assert abs(float(weights.mean())) < 0.05 and abs(float(weights.std()) - 1.0) < 0.05


def test_unknown_init_is_named():
    with pytest.raises(ValueError, match="init"):
        initialize(build_lstm("native", 1, 1), "xavier")


@pytest.mark.parametrize("text, selected", [
    ("all", IMPLEMENTATIONS),
    ("", IMPLEMENTATIONS),
    (" native , scratch_fast ", ("native", "scratch_fast")),
    ("scratch,native,scratch", ("scratch", "native")),  # order as given, repeats dropped
])
def test_a_selection_picks_names_in_the_order_given(text, selected):
    assert select_names(text) == selected


@pytest.mark.parametrize("text, unknown", [
    ("native,lstm9", ["lstm9"]),
    ("native,,scratch", [""]),
    ("All", ["All"]),
])
def test_a_selection_names_the_entries_it_refuses(text, unknown):
    with pytest.raises(UnknownNamesError) as caught:
        select_names(text)
    assert caught.value.unknown == unknown
    assert "native, scratch, scratch_fast, statquest" in str(caught.value)


def test_a_selection_of_other_choices_keeps_their_order():
    assert select_names("all", {"toy": 1, "small": 2}) == ("toy", "small")
    assert select_names("small", ("toy", "small")) == ("small",)


def test_release_memory_hands_back_pooled_buffers():
    from lstm_models import release_memory
    from lstm_models.core.scratch_fast import workspace

    torch.manual_seed(0)
    lstm = build_lstm("scratch_fast", 256, 256)
    lstm(torch.randn(50, 16, 256))[0].sum().backward()
    assert workspace.pooled_bytes() > 0
    release_memory()
    assert workspace.pooled_bytes() == 0
