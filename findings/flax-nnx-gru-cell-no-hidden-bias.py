"""flax.nnx.GRUCell has no hidden-side bias b_hn, although its docstring (and linen.GRUCell) has
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): with bias_init != 0 nnx and linen differ."""
import os, sys, warnings
os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.filterwarnings("ignore")
try:
    import numpy as np, jax, jax.numpy as jnp
    import flax.linen as nn
    from flax import nnx
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID, B, I, H = "flax-nnx-gru-cell-no-hidden-bias", 2, 3, 4
ones = jax.nn.initializers.ones  # a nonzero bias_init: zeros would hide a missing bias
cell = nnx.GRUCell(I, H, bias_init=ones, rngs=nnx.Rngs(0))
p = nnx.to_pure_dict(nnx.state(cell, nnx.Param))
rng = np.random.default_rng(0)
x, h = rng.standard_normal((B, I)).astype(np.float32), rng.standard_normal((B, H)).astype(np.float32)
y_nnx = np.asarray(cell(jnp.asarray(h), jnp.asarray(x))[1])
Wi, bi, Wh = (np.asarray(a, np.float64) for a in (p["dense_i"]["kernel"], p["dense_i"]["bias"], p["dense_h"]["kernel"]))
sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
def doc_step(b_hn):  # the docstring's equations, gates r, z, n as nnx splits them
    gx, gh = x @ Wi + bi, h @ Wh
    r, z = sig(gx[:, :H] + gh[:, :H]), sig(gx[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gx[:, 2 * H:] + r * (gh[:, 2 * H:] + b_hn))
    return (1 - z) * n + z * h
sl = lambda a, g: jnp.asarray(a[..., g * H:(g + 1) * H], jnp.float32)  # noqa: E731
lp = {f"i{k}": {"kernel": sl(Wi, g), "bias": sl(bi, g)} for g, k in enumerate("rzn")}
lp.update({f"h{k}": {"kernel": sl(Wh, g)} for g, k in enumerate("rzn")}); lp["hn"]["bias"] = jnp.ones(H)
y_lin = np.asarray(nn.GRUCell(H).apply({"params": lp}, jnp.asarray(h), jnp.asarray(x))[1])  # same weights
print("nnx.GRUCell params:", {k: sorted(d) for k, d in p.items()}, "| linen.GRUCell hn:", sorted(lp["hn"]))
print("docstring shows b_hn:", "b_{hn}" in nnx.GRUCell.__doc__)
err_doc = float(np.abs(y_nnx - doc_step(np.ones(H))).max())  # b_hn = bias_init = 1, as linen's hn/bias
err_nob = float(np.abs(y_nnx - doc_step(0.0)).max())
err_lin = float(np.abs(y_lin - doc_step(np.ones(H))).max())
print(f"expected (docstring, b_hn = 1 = bias_init): linen.GRUCell, same weights, matches it to {err_lin:.1e}")
print(f"observed: nnx y vs docstring with b_hn = 1: {err_doc:.3g}; vs the docstring with b_hn dropped: {err_nob:.1e}")
ok = "bias" not in p["dense_h"] and err_nob < 1e-5 and err_doc > 1e-2 and err_lin < 1e-5
print(f"REPRODUCED: {ID}" if ok else f"NOT REPRODUCED: {ID}")
sys.exit(0 if ok else 1)
