"""flax.linen.RNN / nnx.RNN with return_carry=True: a row whose seq_lengths entry is 0 gets as its carry the
state after all T padded steps (seq_lengths - 1 = -1 indexes the last step), not its initial carry."""
import sys
try:
    import numpy as np, jax, jax.numpy as jnp
    from flax import linen as nn, nnx
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID, T, B, I, H = "flax-rnn-zero-length-carry-after-padding", 4, 3, 2, 3
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((B, T, I)), jnp.float32)
c0, h0 = (jnp.asarray(rng.standard_normal((B, H)), jnp.float32) for _ in range(2))
L = jnp.array([T, 0, 2])  # row 1: no valid step
hits = []
lin = nn.RNN(nn.LSTMCell(H), return_carry=True)
nx = nnx.RNN(nnx.LSTMCell(I, H, rngs=nnx.Rngs(0)), return_carry=True)
variables = lin.init(jax.random.key(0), x)
runs = {"linen": lambda **kw: lin.apply(variables, x, initial_carry=(c0, h0), **kw),
        "nnx": lambda **kw: nx(x, initial_carry=(c0, h0), **kw)}
for api, run in runs.items():
    for rev in (False, True):
        (c, h), _ = run(seq_lengths=L, reverse=rev)
        (cT, hT), _ = run(seq_lengths=jnp.array([T, T, 2]), reverse=rev)  # row 1 through all T steps
        d_init, d_T = float(jnp.abs(h[1] - h0[1]).max()), float(jnp.abs(h[1] - hT[1]).max())
        print(f"{api} reverse={rev}: row of length 0: max|h - initial h| = {d_init:.3g} (expected 0), "
              f"max|h - state after all {T} steps| = {d_T:.3g}; |c - initial c| = {float(jnp.abs(c[1] - c0[1]).max()):.3g}")
        hits.append(d_init > 0.1 and d_T < 1e-6)
ok = all(hits)
print(f"REPRODUCED: {ID}" if ok else f"NOT REPRODUCED: {ID}")
sys.exit(0 if ok else 1)
