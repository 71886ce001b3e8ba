"""The LSTM implementations: plain ``torch.nn.Module``s, no Lightning and no MLflow."""

from .factory import lstm_inputs
from .initialization import INIT_SCHEMES, apply_statquest_init, initialize, lstm_state_dict
from .compiled import CompiledScratchLSTM, ImplementationUnavailable
from .registry import (DEFAULT_SELECTION, ENTRY_POINT_GROUP, IMPLEMENTATIONS, SpecError, UnknownImplementationError,
                       UnknownNamesError, build_lstm, check_implementation, label_of, resolve, select_names,
                       select_specs, takes_sizes)
from .scratch import ScratchLSTM
from .scratch_fast import LSTMLayerFunction, ScratchFastLSTM, release_memory
from .statquest import StatQuestLSTM, lstm_to_statquest_state, statquest_to_lstm_state

__all__ = [
    "DEFAULT_SELECTION", "ENTRY_POINT_GROUP", "IMPLEMENTATIONS", "INIT_SCHEMES", "CompiledScratchLSTM",
    "ImplementationUnavailable", "LSTMLayerFunction", "ScratchFastLSTM", "ScratchLSTM", "SpecError", "StatQuestLSTM",
    "UnknownImplementationError", "UnknownNamesError", "apply_statquest_init", "build_lstm", "check_implementation",
    "initialize", "label_of", "lstm_inputs", "lstm_state_dict", "lstm_to_statquest_state", "release_memory",
    "resolve", "select_names", "select_specs", "statquest_to_lstm_state", "takes_sizes",
]
