"""Bench builders for the jax.experimental.rnn paths (see conformance/core/bench.py for timing and cases)."""
from __future__ import annotations

import numpy as np

from conformance.core.bench import SIZES, Bench, rng_arrays

def jax_lstm_ref(info, size):
    """``jax.experimental.rnn.lstm_ref`` (the CPU reference of the cuDNN-only ``lstm``), jitted,
    through the adapter's own function; forward and ``jax.grad`` w.r.t. weights and x. It refuses
    any dropout: "Dropout not supported in LSTM reference because we cannot determine CUDNN
    dropout mask" (jax/experimental/rnn.py)."""
    import jax
    import jax.numpy as jnp

    import reference as ref

    from conformance.adapters.jax.experimental_rnn import JaxExperimentalLSTM, pack_weights

    T, B, H = SIZES[size]
    rng = np.random.default_rng(0)
    x_np, dy_np = rng_arrays(0, (B, T, H), (B, T, H))
    x, dy, lens = jnp.asarray(x_np), jnp.asarray(dy_np), jnp.full((B,), T, jnp.int32)
    adapter = JaxExperimentalLSTM(info)
    b = Bench(info.name, size, T, B, H, version=jax.__version__, threads="XLA default")
    for L in (1, 2):
        f = adapter.function(H, H, L, 1)
        w = jnp.asarray(pack_weights([[ref.random_lstm(rng, H, H)] for _ in range(L)]))
        h0 = jnp.zeros((L, B, H), jnp.float32)
        fwd = jax.jit(lambda w, t, f=f, h0=h0: f(w, t, h0, h0, lens)[0])
        grad = jax.jit(jax.grad(lambda w, t, fwd=fwd: jnp.sum(fwd(w, t) * dy), argnums=(0, 1)))
        b.add("forward", "off", (lambda fwd=fwd, w=w: fwd(w, x).block_until_ready()), layers=L)
        b.add("forward+backward", "off", (lambda grad=grad, w=w: jax.block_until_ready(grad(w, x))), layers=L)
    why = "lstm_ref refuses dropout != 0 (cuDNN's dropout mask cannot be reproduced); lstm itself is CUDA-only"
    for kind in ("input", "recurrent"):
        b.na(kind, why)
    b.na("inter-layer", why, layers=2)
    return b


