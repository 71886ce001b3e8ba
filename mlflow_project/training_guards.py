"""Stop a training run whose loss is no longer a finite number, or that a signal asked to stop.

Once the loss is NaN or infinite every later step is too, and the weights are garbage: training on would waste
the remaining epochs and log a misleading curve. Lightning's ``EarlyStopping`` with ``check_finite`` stops at the
end of the first epoch whose training loss is not finite (``finite_loss_guard``); it reads the epoch's loss as
logged (one mean per epoch, synchronised over DDP ranks), so every rank stops in the same epoch.
``non_finite_loss`` then tells the caller that training stopped for that reason.
"""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

from .interruption import raise_if_signalled


class NonFiniteLoss(Exception):
    """``str()`` says which loss, its value and the epoch (1-based)."""

    def __init__(self, name: str, value: float, epoch: int):
        self.name, self.value, self.epoch = name, value, epoch
        super().__init__(f"{name} became {value} at epoch {epoch}")


def finite_loss_guard(max_epochs: int) -> EarlyStopping:
    """Stops training when the epoch's training loss is not finite, and for no other reason (its patience is the
    whole run)."""
    return EarlyStopping(monitor="train_loss", mode="min", check_finite=True, patience=max_epochs + 1,
                         check_on_train_epoch_end=True, verbose=False)


def non_finite_loss(trainer: L.Trainer) -> NonFiniteLoss | None:
    """Why a finished ``fit`` stopped early, if its training loss stopped being finite."""
    loss = trainer.callback_metrics.get("train_loss")
    if loss is None or math.isfinite(float(loss)):
        return None
    return NonFiniteLoss("train_loss", float(loss), trainer.current_epoch)  # epochs completed: the last one's number


class StopOnSignal(L.Callback):
    """Raise ``Interrupted`` after the batch during which SIGINT or SIGTERM arrived, should the signal handler's
    own exception have been lost (see ``interruption``)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        raise_if_signalled()
