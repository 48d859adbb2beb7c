"""Bench builders for the Keras 3 and tf-keras paths (see conformance/core/bench.py for timing and cases)."""
from __future__ import annotations

from conformance.core.bench import SIZES, Bench, NoBuilder, P, rng_arrays

# ------------------------------------------------------------------ Keras 3

def keras_layers(info, size):
    """keras.layers.LSTM / GRU (and keras.layers.RNN(cell)), built once, called with training=True;
    tf-keras 2's ``tf_keras.layers.LSTM / GRU`` too (TensorFlow only, no ``seed`` argument).

    TensorFlow backend: the call and the gradient tape inside one ``tf.function`` each (as
    ``fit`` runs them); JAX backend: ``model.stateless_call`` inside ``jax.jit`` (as ``fit``
    runs it) and ``jax.grad``; torch backend: eager, torch autograd."""
    if info.framework == "tf_keras":
        import tf_keras as keras

        backend, seeded = "tensorflow", {}
    else:
        import keras

        backend, seeded = keras.backend.backend(), {"seed": 1}
    T, B, H = SIZES[size]
    x_np, dy_np = rng_arrays(0, (B, T, H), (B, T, H))
    lstm = info.cell == "lstm"
    name = info.name if info.framework == "tf_keras" else f"{info.name} ({backend})"
    b = Bench(name, size, T, B, H, version=keras.__version__)
    rnn_wrapper = info.options.get("layer") == "rnn" or info.name.startswith(f"{info.framework}.layers.RNN(")
    if info.options.get("layer") not in (None, "rnn"):
        raise NoBuilder(f"no Keras bench builder for {info.name}")

    def layer(**kw):
        if rnn_wrapper:
            cell = (keras.layers.LSTMCell if lstm else keras.layers.GRUCell)(H, **seeded, **kw)
            return keras.layers.RNN(cell, return_sequences=True)
        return (keras.layers.LSTM if lstm else keras.layers.GRU)(H, return_sequences=True, **seeded, **kw)

    def model(*layers):
        m = keras.Sequential([keras.Input((T, H), batch_size=B), *layers])
        return m

    if backend == "tensorflow":
        import tensorflow as tf

        b.threads = f"tf intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}"
        x, dy = tf.constant(x_np), tf.constant(dy_np)

        def fwd(m):
            f = tf.function(lambda t: m(t, training=True))
            return lambda: f(x).numpy()

        def fb(m):
            @tf.function
            def g(t):
                with tf.GradientTape() as tape:
                    tape.watch(t)
                    loss = tf.reduce_sum(m(t, training=True) * dy)
                return tape.gradient(loss, [t] + m.trainable_variables)
            return lambda: g(x)[0].numpy()
    elif backend == "jax":
        fwd, fb = _keras_jax_calls(b, x_np, dy_np)
    else:
        import torch

        b.threads = f"torch {torch.get_num_threads()}"
        x, dy = torch.from_numpy(x_np), torch.from_numpy(dy_np)
        xg = x.clone().requires_grad_(True)

        def fwd(m):
            def f():
                with torch.no_grad():
                    m(x, training=True)
            return f

        def fb(m):
            def f():
                xg.grad = None
                for v in m.trainable_variables:
                    v.value.grad = None
                (m(xg, training=True) * dy).sum().backward()
            return f

    off = model(layer())
    variants = {"off": off, "input": model(layer(dropout=P)), "recurrent": model(layer(recurrent_dropout=P))}
    two_off = model(layer(), layer())
    two_drop = model(layer(), keras.layers.Dropout(P, seed=2), layer())
    impl1 = None if rnn_wrapper else model(layer(implementation=1))
    kind = "LSTM" if lstm else "GRU"
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        base = (mode, "off", 1, "")
        b.add(mode, "off", mk(off))
        b.add(mode, "input", mk(variants["input"]), note=f"dropout={P}", against=base,
              comparison="input dropout vs off")
        b.add(mode, "recurrent", mk(variants["recurrent"]), note=f"recurrent_dropout={P}: the generic cell loop, "
              "implementation=1", against=base,
              comparison="keras recurrent_dropout (generic loop, implementation=1) vs off (fused-path eligible)")
        if impl1 is not None:
            b.add(mode, "off", mk(impl1), variant="implementation=1",
                  note="what recurrent_dropout switches to, without its masks", against=base,
                  comparison="keras implementation=1 vs 2 (no dropout)")
        b.add(mode, "off", mk(two_off), layers=2)
        b.add(mode, "inter-layer", mk(two_drop), layers=2, note=f"{kind}, Dropout({P}), {kind}",
              against=(mode, "off", 2, ""), comparison="inter-layer Dropout layer vs off (2 layers)")
    return b


def _keras_jax_calls(b, x_np, dy_np):
    """(fwd(model), fb(model)) for Keras on JAX: ``stateless_call`` under ``jax.jit``; the dropout
    seed state is passed in unchanged, so every call draws the same masks (the cost is the same)."""
    import jax
    import jax.numpy as jnp

    b.threads = "XLA default"
    x, dy = jnp.asarray(x_np), jnp.asarray(dy_np)

    def values(m):
        return [v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables]

    def fwd(m):
        tv, ntv = values(m)
        f = jax.jit(lambda tv, ntv, t: m.stateless_call(tv, ntv, t, training=True)[0])
        return lambda: f(tv, ntv, x).block_until_ready()

    def fb(m):
        tv, ntv = values(m)
        loss = lambda tv, t: jnp.sum(m.stateless_call(tv, ntv, t, training=True)[0] * dy)  # noqa: E731
        g = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return lambda: jax.block_until_ready(g(tv, x))

    return fwd, fb


