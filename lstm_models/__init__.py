"""lstm_models: a hand-written LSTM next to torch.nn.LSTM.

``from lstm_models import build_lstm, IMPLEMENTATIONS`` gives the plain-PyTorch core and never imports Lightning
or MLflow; the Lightning side lives in ``lstm_models.training`` and is imported only when asked for.
"""

from .core import *  # noqa: F401,F403  (the public contract is the core's)
from .core import __all__

__version__ = "0.1.0"
