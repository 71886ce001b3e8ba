"""Stop a training run whose loss is no longer a finite number, or that a signal asked to stop.

Once the loss is NaN or infinite every later step is too, and the weights are garbage: training on would waste
the remaining epochs and log a misleading curve. The callback raises ``NonFiniteLoss`` at the end of the first
epoch whose training loss is not finite; Lightning finalises the loggers (metrics logged so far are written)
and re-raises it. It reads the epoch's loss as logged (one mean per epoch, synchronised over DDP ranks) rather
than each batch's: every rank then stops in the same epoch, and no batch waits on a device-to-host copy.
"""

from __future__ import annotations

import math

import lightning as L

from .interruption import raise_if_signalled


class NonFiniteLoss(Exception):
    """``str()`` says which loss, its value and the epoch (1-based)."""

    def __init__(self, name: str, value: float, epoch: int):
        self.name, self.value, self.epoch = name, value, epoch
        super().__init__(f"{name} became {value} at epoch {epoch}")


class StopOnNonFiniteLoss(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        loss = trainer.callback_metrics.get("train_loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLoss("train_loss", float(loss), trainer.current_epoch + 1)


class StopOnSignal(L.Callback):
    """Raise ``Interrupted`` after the batch during which SIGINT or SIGTERM arrived, should the signal handler's
    own exception have been lost (see ``interruption``)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        raise_if_signalled()
