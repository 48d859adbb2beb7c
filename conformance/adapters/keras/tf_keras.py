"""tf-keras 2 (``import tf_keras``) ``LSTM`` / ``GRU``: the Keras 3 adapter's machinery on the
tf-keras layers (same weights, same gate blocks: ``reference.layouts.to_tf_keras_*``).

tf-keras runs on TensorFlow only; gradients come from ``tf.GradientTape``. ``import tf_keras``
works in any process; ``tf.keras`` / ``tf.compat.v1.nn.rnn_cell`` map to it only with
``TF_USE_LEGACY_KERAS=1`` (set before TensorFlow is imported), which is how the tf-keras
suites (marked ``tf_keras``) are run. The registry entries use ``zero_output_for_mask=True``.

Mask injection: tf-keras cells draw their masks through
``DropoutRNNCellMixin.get_dropout_mask_for_cell(inputs, training, count)`` and
``get_recurrent_dropout_mask_for_cell`` (tf_keras/src/layers/rnn/dropout_rnn_cell_mixin.py),
which return a list of `count` masks (4 for LSTM, 3 for GRU); `inject` replaces them on the
cell instance and on its layer (the LSTM / GRU layers draw their fused path's input mask
through the same mixin method on themselves, with the whole (B, T, F) sequence, and apply
only ``mask[0]``; the injected (B, F) masks are given to them as (B, 1, F). What tf-keras itself
draws there, a fresh mask per step, is suites/test_keras_mask_time.py's finding).
"""
from __future__ import annotations

import numpy as np

from conformance.adapters.base import BaseAdapter
from conformance.adapters.keras.rnn import KerasRNN, check_options


class TFKerasRNN(KerasRNN):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        check_options(info)
        BaseAdapter.__init__(self, info, device=device, dtype=dtype)
        import tf_keras

        self.keras = tf_keras
        self._backend = "tensorflow"
        self.kind = info.option("layer", "layer")

    def numpy(self, tensor):
        return np.asarray(tensor.numpy() if hasattr(tensor, "numpy") else tensor)

    def mask_tensor(self, mask):
        import tensorflow as tf

        return tf.constant(mask)

    def _call(self, layers, seq, inits, mask, training):
        import tensorflow as tf

        c = lambda a: tf.convert_to_tensor(a) if isinstance(a, np.ndarray) else a  # noqa: E731
        inits = None if inits is None else [[c(a) for a in part] for part in inits]
        return super()._call(layers, c(seq), inits, mask, training)

    def cells_of(self, layer):
        if isinstance(layer, self.keras.layers.Bidirectional):
            return [layer.forward_layer.cell, layer.backward_layer.cell]
        return [layer.cell]

    def rnn_layers_of(self, layer):
        """The recurrent layers inside `layer` (its two directions, or itself), canonical order."""
        if isinstance(layer, self.keras.layers.Bidirectional):
            return [layer.forward_layer, layer.backward_layer]
        return [layer]

    def inject(self, layers, inject):
        """Patch the mask hooks of each cell and of the layer that owns it: tf-keras' LSTM / GRU
        layers draw the input mask of their fused path themselves (the layer mixes in
        DropoutRNNCellMixin: ``self.get_dropout_mask_for_cell(inputs, training, count=4)``)."""
        import tensorflow as tf

        owners = [r for layer in layers for r in self.rnn_layers_of(layer)]
        per = len(self.cells_of(layers[0]))
        for (l, d), hooks in inject.items():
            owner = owners[l * per + d]
            for knob, method in (("dropout", "get_dropout_mask_for_cell"),
                                 ("recurrent_dropout", "get_recurrent_dropout_mask_for_cell")):
                if hooks.get(knob) is None:
                    continue
                m = hooks[knob]
                ms = [tf.constant(np.asarray(a, self.dtype)) for a in (m if isinstance(m, list) else [m])]
                hook = (lambda v: lambda inputs, training, count=1: _fit(v, inputs, count))(ms)
                for target in (owner.cell, owner):
                    if hasattr(target, method):
                        setattr(target, method, hook)

    def kernel_of(self, stack, x, h0=None, c0=None, lengths=None):
        return "tf-keras standard_lstm/gru (CPU; cuDNN only with a GPU)"

    def seed_kwargs(self, seed, l):
        """tf-keras documents no ``seed`` argument on LSTM / GRU or their cells (a layer's ``seed=``
        would reach only the layer's own generator, not the cell's): users seed the process,
        `dropout_session` does it with ``tf_keras.utils.set_random_seed``."""
        return {}

    def dropout_session(self, stack, rates, seed):
        """As Keras 3's, seeded the documented tf-keras way: ``tf_keras.utils.set_random_seed(seed)``
        (Python, NumPy and TensorFlow's global seed) right before the layers are built; successive
        calls continue TensorFlow's random state."""
        session = super().dropout_session(stack, rates, seed)
        return _GlobalSeeded(session, lambda: self.keras.utils.set_random_seed(int(seed)))


class _GlobalSeeded:
    """A session that sets the process's seed (`reseed`) once, before its first call builds the layers."""

    def __init__(self, session, reseed):
        self.session, self.reseed = session, reseed

    def __call__(self, x, h0=None, c0=None, training=True):
        if self.session.layers is None:
            self.reseed()
        return self.session(x, h0, c0, training=training)


def _fit(masks, inputs, count):
    """The injected (B, F) masks as the caller asks: `count` of them, and (B, 1, F) for the layer's
    fused path, which asks with the whole (B, T, F) sequence (one mask for every step)."""
    masks = list(masks) if len(masks) == count else [masks[0]] * count
    return masks if len(inputs.shape) == 2 else [m[:, None] for m in masks]


def make(info, *, device="cpu", dtype="float32"):
    return TFKerasRNN(info, device=device, dtype=dtype)
