"""jax.experimental.rnn.lstm_ref: a row with seq_lengths 0 gets h_n / c_n after all T padded steps
(the state at index seq_lengths - 1 = -1) instead of its initial state."""
import sys
try:
    import numpy as np
    import jax
    import jax.numpy as jnp
    from jax.experimental import rnn
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID = "jax-lstm-ref-zero-length-final-state-after-padding"
T, B, I, H = 4, 2, 3, 2
rng = np.random.default_rng(7)
f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
x, h0, c0 = (f32(rng.standard_normal(s)) for s in ((B, T, I), (1, B, H), (1, B, H)))
weights = f32(rng.standard_normal(rnn.get_num_params_in_lstm(I, H, 1, False)) * 0.5)
W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, I, H, 1, False)
run = lambda lengths: rnn.lstm_ref(x, h0, c0, W_ih, W_hh, b_ih, b_hh, jnp.asarray(lengths, jnp.int32),  # noqa: E731
                                   I, H, 1, 0.0, False)
y, h_n, c_n = run([T, 0])
_, h_all, _ = run([T, T])  # row 1 run over all T steps
off = float(jnp.abs(h_n[0, 1] - h0[0, 1]).max())
print(f"row of length 0: h_n {np.round(np.asarray(h_n[0, 1]), 4)}; h0 {np.round(np.asarray(h0[0, 1]), 4)}; "
      f"state after all {T} steps {np.round(np.asarray(h_all[0, 1]), 4)}; outputs zero {bool(jnp.all(y[1] == 0))}")
print("expected: h_n = h0 and c_n = c0 for a row with no valid step")
print(f"jax {jax.__version__}")
bad = off > 1e-6 and float(jnp.abs(h_n[0, 1] - h_all[0, 1]).max()) < 1e-6
print(f"REPRODUCED: {ID}" if bad else f"NOT REPRODUCED: {ID}")
sys.exit(0 if bad else 1)
