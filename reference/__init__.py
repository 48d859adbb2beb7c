"""Ground truth for rnn-conformance: LSTM/GRU in pure NumPy with explicit dropout masks.

Imports nothing but numpy. See README.md ("The reference") for a runnable example.
"""
from . import layouts
from .masks import LayerMasks, Mask, MaskSampler, StackMasks, keep_values
from .padding import POLICIES, Packed, lengths_to_valid, pack, unpack
from .params import GRU_GATES, LSTM_GATES, GRUWeights, LSTMWeights, random_gru, random_lstm, random_stack
from .rnn import Grads, Result, run, run_vjp

__all__ = [
    "LSTMWeights", "GRUWeights", "LSTM_GATES", "GRU_GATES", "random_lstm", "random_gru", "random_stack",
    "Mask", "LayerMasks", "StackMasks", "MaskSampler", "keep_values",
    "POLICIES", "Packed", "pack", "unpack", "lengths_to_valid",
    "run", "run_vjp", "Result", "Grads", "layouts",
]
