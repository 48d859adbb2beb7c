"""TensorFlow's RNN-cell dropout wrapper around an LSTM cell, stepped by hand in eager mode.

``tf.nn.RNNCellDropoutWrapper`` (``tensorflow/python/keras/layers/rnn_cell_wrapper_v2.py``, on
``legacy_rnn/rnn_cell_wrapper_impl.py``'s ``DropoutWrapperBase``) is TensorFlow's own frozen copy
of the old tf.keras wrapper, present with Keras 3 and with tf-keras. It runs inside no Keras 3
``RNN`` layer, so the time loop is the caller's: ``out, state = wrapper(x_t, state)``, as
TensorFlow 1 code ran it (`step`). This module holds what the suite
(suites/test_tf_dropout_wrapper.py, which also tries tf-keras and the legacy v1 cells / wrapper)
and the registry path share: building each cell with canonical weights, the wrapper, the state
conventions, the loop.

The registry path ``tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell)`` (`DropoutWrapperLSTM`):
a Keras 3 ``keras.layers.LSTMCell`` (TensorFlow backend; `BackendUnavailable` on another one, a
skip in the suites) inside ``tf.nn.RNNCellDropoutWrapper``, one layer, one direction, float32,
initial state given as ``[h0, c0]`` (the cell's state list).

- ``forward``: every keep probability 1 (the wrapper adds no dropout op then: ``_should_dropout``
  is False for the float 1.0), so the plain cell, which must equal the reference.
- Dropout knobs, by TensorFlow's names: ``input_keep_prob``, ``state_keep_prob``,
  ``output_keep_prob``; the suites' rate p is a drop probability, passed as ``keep_prob = 1 - p``.
  ``variational_recurrent=False`` (the default): "a different dropout mask is applied at every
  time step". ``variational_recurrent=True`` is not a knob of this path: it draws its noise once
  in the constructor (finding tf-dropout-wrapper-variational-mask-fixed-at-construction), so
  successive session calls would all reuse one mask, shared by every batch row; the fingerprint
  oracle counts draws across calls and rows as independent, so that variant is measured by
  suites/test_tf_dropout_wrapper.py instead (test_wrapper_masks, test_variational_mask_per_run).
- Seeding, as users write it: ``tf.random.set_seed(seed)`` once when the session is built (it
  also clears TensorFlow's eager kernel cache, so a session restarts the op-seeded streams) and
  ``seed=seed`` to the wrapper, which derives one op seed per (input / state / output, structure
  index) from it; the dropout ops of successive steps and calls continue those streams.
- Evaluation mode: the wrapper has no training flag, so a ``training=False`` call steps the
  wrapped cell itself (``cell(x_t, state, training=False)``, the same weights), the way TF 1
  code kept the wrapper out of inference (``if is_training: cell = DropoutWrapper(cell, ...)``).
"""
from __future__ import annotations

import os

import numpy as np

from reference import Result, layouts

from conformance.adapters.base import BaseAdapter, DeviceUnavailable, as_stack, checked_rates

__all__ = ["V2", "V1", "K3", "TFK", "V1CELL", "KNOBS", "BackendUnavailable", "keras_backend_problem", "make_cell",
           "set_weights", "make_wrapper", "split_state", "make_state", "step", "DropoutWrapperLSTM",
           "WrapperSession", "make"]

V2, V1 = "tf.nn.RNNCellDropoutWrapper", "tf.compat.v1.nn.rnn_cell.DropoutWrapper"
K3, TFK, V1CELL = "keras.layers.LSTMCell", "tf_keras.layers.LSTMCell", "tf.compat.v1.nn.rnn_cell.LSTMCell"
KNOBS = ("input_keep_prob", "state_keep_prob", "output_keep_prob")  # the wrapper's own names


class BackendUnavailable(DeviceUnavailable):
    """Keras 3 runs on another backend in this process: the TensorFlow wrapper cannot run its cell
    there. A `DeviceUnavailable`, so the suites skip with this message as the reason."""


def keras_backend_problem(keras):
    """None when Keras 3 (module `keras`) runs on TensorFlow in this process, else the reason."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return None
    return (f"the TF dropout wrapper runs TensorFlow ops: Keras 3 backend is {backend} "
            f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND', '')!r}); it runs with KERAS_BACKEND=tensorflow")


def make_cell(cell_name, k, w):
    """The (unbuilt) cell `cell_name` for canonical weights `w` (`k`: keras or tf_keras); the
    wrapper builds it (a Keras 3 cell refuses a second build)."""
    if cell_name == V1CELL:
        import tensorflow as tf

        forget_bias = layouts.to_block_lstm(w)["forget_bias"]
        return tf.compat.v1.nn.rnn_cell.LSTMCell(w.hidden_size, forget_bias=forget_bias, state_is_tuple=True)
    return k.layers.LSTMCell(w.hidden_size, dtype="float32")


def set_weights(cell_name, cell, w):
    """Canonical weights `w` into the built cell (Keras: i, f, c, o blocks; v1: [x; h] @ kernel, i, c, f, o)."""
    if cell_name == V1CELL:
        d = layouts.to_block_lstm(w, dtype="float32")
        cell.set_weights([d["w"], d["b"]])
    else:
        cell.set_weights(list(layouts.to_keras_lstm(w, dtype="float32").values()))


def make_wrapper(wrapper_name, cell, tf, *, input_size, seed, variational=False, **keep):
    """The wrapper around `cell`, keep probabilities `keep` (TensorFlow's keyword names, floats)."""
    cls = tf.nn.RNNCellDropoutWrapper if wrapper_name == V2 else tf.compat.v1.nn.rnn_cell.DropoutWrapper
    return cls(cell, variational_recurrent=variational, input_size=input_size, dtype=tf.float32, seed=seed,
               **{k: float(v) for k, v in keep.items()})


def split_state(state):
    """(h, c) of an LSTM state: Keras [h, c] or an LSTMStateTuple(c, h)."""
    return (state.h, state.c) if hasattr(state, "c") else (state[0], state[1])


def make_state(cell_name, h, c, tf):
    """The initial state the cell takes: an LSTMStateTuple(c, h) for the v1 cell, else [h, c]."""
    if cell_name == V1CELL:
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(tf.constant(c, tf.float32), tf.constant(h, tf.float32))
    return [tf.constant(h, tf.float32), tf.constant(c, tf.float32)]


def step(cell_fn, x, state, tf):
    """The time loop ``out, state = cell_fn(x_t, state)`` over time-major x (T, B, I):
    (y (T, B, H) as NumPy float32, the last state)."""
    ys = []
    for t in range(x.shape[0]):
        out, state = cell_fn(tf.constant(x[t], tf.float32), state)
        ys.append(out.numpy())
    return np.stack(ys), state


# ---------------------------------------------------------------- the registry path

class DropoutWrapperLSTM(BaseAdapter):
    """``tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell)``: see the module docstring."""

    def check_device(self):
        super().check_device()
        import keras

        problem = keras_backend_problem(keras)
        if problem is not None:
            raise BackendUnavailable(f"{self.info.name}: {problem}")

    def forward(self, stack, x, h0=None, c0=None):
        """Every keep probability 1: the wrapped cell alone, no random op."""
        return WrapperSession(self, stack, {}, None)(x, h0, c0, training=True)

    def dropout_session(self, stack, rates, seed):
        """The cell inside the wrapper with ``keep_prob = 1 - p`` for each knob in `rates`,
        after ``tf.random.set_seed(seed)``, ``seed=seed`` to the wrapper."""
        rates = checked_rates(self.info, rates, one=False,
                              why="the wrapper gets keep_prob = 1 - p; keep_prob 0 makes its tf.nn.dropout call fail")
        return WrapperSession(self, stack, rates, int(seed))


class WrapperSession:
    """One Keras 3 LSTMCell inside one ``tf.nn.RNNCellDropoutWrapper``, built with the weights at
    creation and reused by every call (the wrapper's op-seeded streams continue across calls)."""

    def __init__(self, adapter, stack, rates, seed):
        import keras
        import tensorflow as tf

        self.adapter = adapter
        w0 = as_stack(stack)[0][0]
        self.stack, _, _, _ = adapter.prepare(stack, np.zeros((1, 1, w0.input_size)))
        w = self.stack[0][0]
        self.hidden = w.hidden_size
        if seed is not None:
            tf.random.set_seed(seed)  # resets the op-seed counter and clears the eager kernel cache
        self.cell = make_cell(K3, keras, w)
        keep = {k: 1.0 - rates.get(k, 0.0) for k in KNOBS}
        self.wrapper = make_wrapper(V2, self.cell, tf, input_size=w.input_size, seed=seed, **keep)
        self.wrapper.build(tf.TensorShape((None, w.input_size)))
        set_weights(K3, self.cell, w)

    def __call__(self, x, h0=None, c0=None, training=True):
        import tensorflow as tf

        _, x, h0, c0 = self.adapter.prepare(self.stack, x, h0, c0)
        B, H = x.shape[1], self.hidden
        h = np.zeros((B, H), np.float32) if h0 is None else h0[0]
        c = np.zeros((B, H), np.float32) if c0 is None else c0[0]
        cell = self.wrapper if training else (lambda x_t, s: self.cell(x_t, s, training=False))
        y, state = step(cell, x, make_state(K3, h, c, tf), tf)
        h_n, c_n = (np.asarray(s.numpy())[None] for s in split_state(state))
        return Result(y=y, h_n=h_n, c_n=c_n)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for ``tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell)``."""
    return DropoutWrapperLSTM(info, device=device, dtype=dtype)
