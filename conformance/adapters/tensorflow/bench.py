"""Bench builders for the TensorFlow raw-op paths (see conformance/core/bench.py for timing and cases)."""
from __future__ import annotations

import numpy as np

from conformance.core.bench import SIZES, Bench, P, rng_arrays

# ------------------------------------------------------------------ TensorFlow raw ops

def tf_block_lstm(info, size):
    """tf.raw_ops.BlockLSTM / BlockLSTMV2 inside tf.function; input dropout = tf.nn.dropout(x)."""
    import tensorflow as tf

    import reference as ref
    from reference import layouts

    T, B, H = SIZES[size]
    w = ref.random_lstm(np.random.default_rng(0), H, H)
    v2 = info.name.endswith("V2")
    d = (layouts.to_block_lstm_v2 if v2 else layouts.to_block_lstm)(w, dtype=np.float32)
    weights = {k: tf.Variable(v) if k in ("w", "b") else v for k, v in d.items()}
    op = tf.raw_ops.BlockLSTMV2 if v2 else tf.raw_ops.BlockLSTM
    x_np, dy_np = rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = tf.constant(x_np), tf.constant(dy_np)
    zeros = tf.zeros((B, H))

    def call(t, drop_in):
        if drop_in:
            t = tf.nn.dropout(t, P)
        return op(seq_len_max=np.int64(T), x=t, cs_prev=zeros, h_prev=zeros, **weights).h

    def fwd(drop_in):
        f = tf.function(lambda t: call(t, drop_in))
        return lambda: f(x).numpy()

    def fb(drop_in):
        @tf.function
        def g(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                loss = tf.reduce_sum(call(t, drop_in) * dy)
            return tape.gradient(loss, [t, weights["w"], weights["b"]])
        return lambda: g(x)[0].numpy()

    b = Bench(info.name, size, T, B, H, version=tf.__version__, threads="tf default")
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        b.add(mode, "off", mk(False))
        b.add(mode, "input", mk(True), note="tf.nn.dropout(x) before the op", against=(mode, "off", 1, ""),
              comparison="input dropout vs off")
    b.na("recurrent", "a raw op has no dropout knob (the kernel loops over time inside)")
    b.na("inter-layer", "one layer per op; stacking is the caller's graph")
    return b


