"""Adapters: all framework knowledge, one subpackage per framework, each importing its
framework only when used: ``torch/`` (nn, cells, common, RNG replay, bench builders),
``keras/`` (Keras 3 and tf-keras layers, kernel decisions, coverage, cross-backend runs,
strategies, bench builders), ``tensorflow/`` (BlockLSTM), ``flax/`` (linen, nnx),
``jax/`` (jax.experimental.rnn), ``onnxruntime/``; ``numpy_reference`` wraps the reference
itself; ``bench.builder`` picks a path's bench builder.

The API (`AdapterInfo`, the `Adapter` protocol, `supports`, `DeviceUnavailable`,
`UnsupportedCase`, the `FEATURES` vocabulary) lives in `base.py` and is re-exported here;
the declarations of the built-in paths live in ``conformance/adapters/registry.py``.
"""
from conformance.adapters.base import (CELLS, DTYPES, FEATURES, Adapter, AdapterInfo, BaseAdapter,
                                       DeviceUnavailable, UnsupportedCase, required_features, supports)

__all__ = ["CELLS", "DTYPES", "FEATURES", "Adapter", "AdapterInfo", "BaseAdapter", "DeviceUnavailable",
           "UnsupportedCase", "required_features", "supports"]
