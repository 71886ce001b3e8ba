"""The tutorial's unit: named parameters, conversions to and from nn.LSTM(1, 1), same predictions."""

import torch
from torch import nn

from lstm_models import build_lstm, lstm_to_statquest_state, statquest_to_lstm_state
from lstm_models.core.statquest import PARAMETER_NAMES
from lstm_models.training import COMPANY_SEQUENCES

TUTORIAL_NAMES = {"wlr1", "wlr2", "blr1", "wpr1", "wpr2", "bpr1", "wp1", "wp2", "bp1", "wo1", "wo2", "bo1"}


def test_twelve_scalar_parameters_named_as_in_the_tutorial():
    unit = build_lstm("statquest", 1, 1)
    params = dict(unit.named_parameters())
    assert set(params) == TUTORIAL_NAMES == set(PARAMETER_NAMES)
    assert all(p.dim() == 0 for p in params.values())


def test_statquest_to_lstm_to_statquest_is_exact():
    torch.manual_seed(4)
    params = {name: torch.randn(()) for name in PARAMETER_NAMES}
    back = lstm_to_statquest_state(statquest_to_lstm_state(params))
    assert list(back) == list(PARAMETER_NAMES)
    for name in PARAMETER_NAMES:
        assert torch.equal(back[name], params[name]), name


def test_lstm_to_statquest_to_lstm_keeps_weights_and_summed_biases():
    torch.manual_seed(5)
    state = nn.LSTM(1, 1).state_dict()
    back = statquest_to_lstm_state(lstm_to_statquest_state(state))
    assert torch.equal(back["weight_ih_l0"], state["weight_ih_l0"])
    assert torch.equal(back["weight_hh_l0"], state["weight_hh_l0"])
    torch.testing.assert_close(back["bias_ih_l0"] + back["bias_hh_l0"], state["bias_ih_l0"] + state["bias_hh_l0"])


def test_gate_mapping_follows_the_tutorial():
    """Forget gate = remember-long-term (lr), input gate = remember-potential (pr), cell = potential memory (p)."""
    state = {"weight_ih_l0": torch.tensor([[1.0], [2.0], [3.0], [4.0]]),
             "weight_hh_l0": torch.tensor([[5.0], [6.0], [7.0], [8.0]]),
             "bias_ih_l0": torch.tensor([0.1, 0.2, 0.3, 0.4]), "bias_hh_l0": torch.tensor([1.0, 1.0, 1.0, 1.0])}
    params = lstm_to_statquest_state(state)
    assert (float(params["wpr2"]), float(params["wlr2"]), float(params["wp2"]), float(params["wo2"])) == (1, 2, 3, 4)
    assert (float(params["wpr1"]), float(params["wlr1"]), float(params["wp1"]), float(params["wo1"])) == (5, 6, 7, 8)
    torch.testing.assert_close(params["blr1"], torch.tensor(1.2))


def test_converted_weights_give_the_same_predictions_on_the_toy_data():
    torch.manual_seed(6)
    native = nn.LSTM(1, 1, batch_first=True)
    unit = build_lstm("statquest", 1, 1, batch_first=True)
    unit.load_state_dict(lstm_to_statquest_state(native.state_dict()))
    companies = torch.tensor(list(COMPANY_SEQUENCES.values())).unsqueeze(-1)  # (2, 4, 1)
    with torch.no_grad():
        want = native(companies)[1][0]
        got = unit(companies)[1][0]
        # and back again: the unit's weights in nn.LSTM layout drive an nn.LSTM(1, 1) to the same predictions
        roundtrip = nn.LSTM(1, 1, batch_first=True)
        roundtrip.load_state_dict(unit.lstm_state_dict())
        again = roundtrip(companies)[1][0]
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(again, want, rtol=1e-6, atol=1e-7)


def test_same_seed_holds_the_gates_nn_lstm_would_draw():
    torch.manual_seed(7)
    native = nn.LSTM(1, 1)
    torch.manual_seed(7)
    unit = build_lstm("statquest", 1, 1)
    expected = lstm_to_statquest_state(native.state_dict())
    for name, value in unit.state_dict().items():
        assert torch.equal(value, expected[name]), name
