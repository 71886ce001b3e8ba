"""Training with Lightning: every implementation learns the tutorial's companies, and scratch follows native."""

import lightning as L
import pytest
import torch

from lstm_models import DEFAULT_SELECTION
from lstm_models.training import CompaniesDataModule, LSTMRegressor, SunspotsDataModule


class EpochLosses(L.Callback):
    def __init__(self):
        self.losses = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.losses.append(float(trainer.callback_metrics["train_loss"]))


def _fit(impl, epochs, seed=0, data=None, **model_kwargs):
    L.seed_everything(seed, verbose=False)
    model = LSTMRegressor(impl, lr=model_kwargs.pop("lr", 0.1), **model_kwargs)
    data = data or CompaniesDataModule()
    losses = EpochLosses()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[losses])
    trainer.fit(model, data)
    return model, data, losses.losses


@pytest.mark.slow  # 300 epochs each
@pytest.mark.parametrize("impl", DEFAULT_SELECTION)  # compiled: tests/test_compiled.py
def test_every_implementation_learns_the_companies(impl):
    model, data, losses = _fit(impl, epochs=300)
    predictions = model.predict_probes(data.probes)
    assert abs(predictions["A"] - 0.0) < 0.05, predictions
    assert abs(predictions["B"] - 1.0) < 0.05, predictions
    assert losses[-1] < losses[0]


# statquest is left out on purpose: it has one bias per gate where nn.LSTM has two, so Adam (which steps each
# parameter by about lr) moves nn.LSTM's summed bias twice as fast; same function, different optimisation.
@pytest.mark.parametrize("impl", [i for i in DEFAULT_SELECTION if i not in ("native", "statquest")])
def test_follows_natives_loss_curve(impl):
    _, _, reference = _fit("native", epochs=100)
    _, _, curve = _fit(impl, epochs=100)
    assert len(curve) == len(reference) == 100
    assert max(abs(a - b) for a, b in zip(curve, reference)) <= 1e-5


def test_hidden_size_one_predicts_the_short_term_memory():
    torch.manual_seed(0)
    model = LSTMRegressor("scratch", hidden_size=1)
    sequences = torch.tensor([[0.0, 0.5, 0.25, 1.0]])
    _, (h_n, _) = model.core(sequences.unsqueeze(-1))
    assert model.head is None
    torch.testing.assert_close(model(sequences), h_n[-1, :, 0])


def test_larger_hidden_size_uses_a_linear_head_on_sunspots():
    model, _, losses = _fit("scratch", epochs=2, data=SunspotsDataModule(window=8, batch_size=64),
                            hidden_size=8, num_layers=2, lr=0.01)
    assert model.head is not None and model.head.in_features == 8
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert model(torch.zeros(5, 8)).shape == (5,)


def test_hyperparameters_are_saved():
    model = LSTMRegressor("statquest", lr=0.05, init="statquest")
    assert dict(model.hparams) == {"impl": "statquest", "input_size": 1, "hidden_size": 1, "num_layers": 1,
                                   "lr": 0.05, "init": "statquest"}
