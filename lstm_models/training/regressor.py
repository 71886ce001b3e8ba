"""``LSTMRegressor``: one LightningModule that trains any registered LSTM core on sequence -> next value.

The core is built by name from the registry, so every implementation is trained by exactly the same code. With
``hidden_size == 1`` the prediction is the final short-term memory itself, as in the tutorial; with a larger
hidden size a linear head maps the last layer's final hidden state to the prediction.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from ..core import build_lstm, initialize


class LSTMRegressor(L.LightningModule):
    def __init__(self, impl: str = "native", input_size: int = 1, hidden_size: int = 1, num_layers: int = 1,
                 lr: float = 0.1, init: str = "lstm"):
        super().__init__()
        self.save_hyperparameters()
        self.core = initialize(build_lstm(impl, input_size, hidden_size, num_layers, batch_first=True), init)
        # No head at hidden size 1: the tutorial's prediction is the short-term memory itself.
        self.head = nn.Linear(hidden_size, 1) if hidden_size > 1 else None

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """sequences (B, T) or (B, T, input_size) -> predictions (B,)."""
        if sequences.dim() == 2:
            sequences = sequences.unsqueeze(-1)  # (B, T, 1)
        _, (h_n, _) = self.core(sequences.to(self.dtype))  # h_n (L, B, H)
        last = h_n[-1]  # (B, H)
        return last[:, 0] if self.head is None else self.head(last).squeeze(-1)  # (B,)

    def _step(self, batch, stage: str) -> torch.Tensor:
        inputs, targets = batch  # (B, T), (B,)
        loss = F.mse_loss(self(inputs), targets.to(self.dtype))
        # sync_dist: under DDP the epoch's loss is the mean over every rank's batches, not rank 0's alone.
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(targets),
                 sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def on_train_epoch_end(self) -> None:
        # The tutorial's out_0 / out_1: the prediction for each probe sequence, once per epoch.
        datamodule = getattr(self.trainer, "datamodule", None)
        probes = getattr(datamodule, "probes", None) or {}
        with torch.no_grad():
            for name, sequence in probes.items():
                prediction = self(sequence.unsqueeze(0).to(self.device))[0]
                self.log(f"prediction_{name}", prediction, on_step=False, on_epoch=True, sync_dist=True)

    def predict_probes(self, probes: dict[str, torch.Tensor]) -> dict[str, float]:
        with torch.no_grad():
            return {name: float(self(seq.unsqueeze(0).to(self.device))[0]) for name, seq in probes.items()}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
