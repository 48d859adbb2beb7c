"""Which bench builder times a registry path: each framework's builders live beside its adapters
(``conformance/adapters/<framework>/bench.py``); timing and cases are conformance/core/bench.py."""
from __future__ import annotations

from conformance.adapters.flax.bench import flax_linen, flax_nnx
from conformance.adapters.jax.bench import jax_lstm_ref
from conformance.adapters.keras.bench import keras_layers
from conformance.adapters.onnxruntime.bench import onnxruntime_rnn
from conformance.adapters.tensorflow.bench import tf_block_lstm
from conformance.adapters.torch.bench import torch_cells, torch_nn
from conformance.core.bench import NoBuilder

__all__ = ["NoBuilder", "builder"]

# ------------------------------------------------------------------ dispatch

def builder(info):
    """The bench builder for a registry path, or raise NoBuilder(reason)."""
    n = info.name
    if info.framework == "torch":
        return torch_cells if "Cell" in n.split("[")[0] else torch_nn
    if info.framework in ("keras", "tf_keras"):
        return keras_layers
    if info.framework == "tensorflow" and n.startswith("tf.raw_ops.BlockLSTM"):
        return tf_block_lstm
    if info.framework == "flax.linen":
        return flax_linen
    if info.framework == "flax.nnx":
        return flax_nnx
    if n == "jax.experimental.rnn.lstm_ref":
        return jax_lstm_ref
    if info.framework == "onnxruntime":
        return onnxruntime_rnn
    raise NoBuilder(f"no bench builder for {n} (framework {info.framework}); add one to "
                    "conformance/adapters/<framework>/bench.py and to builder() here")


