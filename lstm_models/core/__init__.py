"""The LSTM implementations: plain ``torch.nn.Module``s, no Lightning and no MLflow."""

from .factory import lstm_inputs
from .initialization import INIT_SCHEMES, apply_statquest_init, initialize, lstm_state_dict
from .registry import (IMPLEMENTATIONS, UnknownImplementationError, UnknownNamesError, build_lstm,
                       check_implementation, select_names)
from .scratch import ScratchLSTM
from .scratch_fast import LSTMLayerFunction, ScratchFastLSTM, release_memory
from .statquest import StatQuestLSTM, lstm_to_statquest_state, statquest_to_lstm_state

__all__ = [
    "IMPLEMENTATIONS", "INIT_SCHEMES", "LSTMLayerFunction", "ScratchFastLSTM", "ScratchLSTM", "StatQuestLSTM",
    "UnknownImplementationError", "UnknownNamesError", "apply_statquest_init", "build_lstm", "check_implementation",
    "initialize", "lstm_inputs", "lstm_state_dict", "lstm_to_statquest_state", "release_memory", "select_names",
    "statquest_to_lstm_state",
]
