"""Bench builders for the flax paths (see conformance/core/bench.py for timing and cases)."""
from __future__ import annotations

from conformance.core.bench import MODES, SIZES, Bench, NoBuilder, P, rng_arrays

# ------------------------------------------------------------------ flax.linen

def flax_linen(info, size):
    """nn.RNN(cell) in a module, jax.jit'ed forward and jax.grad; dropout = nn.Dropout on the
    input / between two nn.RNN layers, rngs={"dropout": key}."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    T, B, H = SIZES[size]
    cell_name = info.options.get("cell") or info.name.split(".")[-1]
    if cell_name not in ("LSTMCell", "OptimizedLSTMCell", "GRUCell"):
        raise NoBuilder(f"no flax bench builder for {info.name}")
    Cell = getattr(nn, cell_name)

    class Net(nn.Module):
        layers: int = 1
        p_in: float = 0.0
        p_inter: float = 0.0

        @nn.compact
        def __call__(self, x):
            if self.p_in:
                x = nn.Dropout(self.p_in, deterministic=False)(x)
            for l in range(self.layers):
                if l and self.p_inter:
                    x = nn.Dropout(self.p_inter, deterministic=False)(x)
                x = nn.RNN(Cell(features=H), time_major=True)(x)
            return x

    x_np, dy_np = rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = jnp.asarray(x_np), jnp.asarray(dy_np)
    key = jax.random.key(1)

    inits = {}

    def compiled(net):
        if net.layers not in inits:  # dropout adds no parameters: one init per depth
            inits[net.layers] = net.init({"params": jax.random.key(0), "dropout": key}, x)
        params = inits[net.layers]
        f = jax.jit(lambda p, t, k: net.apply(p, t, rngs={"dropout": k}))
        g = jax.jit(jax.grad(lambda p, t, k: jnp.sum(net.apply(p, t, rngs={"dropout": k}) * dy), argnums=(0, 1)))
        return (lambda: f(params, x, key).block_until_ready(),
                lambda: jax.block_until_ready(g(params, x, key)))

    return _flax_bench(info, size, Net, compiled, "nn")


def _flax_bench(info, size, Net, compiled, api):
    """The Bench of a flax path (`api` "nn" or "nnx"): one and two layers, dropout off, on the
    input and between the layers; `compiled(net)` gives (forward, forward+backward) callables."""
    import flax

    T, B, H = SIZES[size]
    b = Bench(info.name, size, T, B, H, version=flax.__version__, threads="XLA default")
    nets = {("off", 1): Net(), ("input", 1): Net(p_in=P), ("off", 2): Net(layers=2),
            ("inter-layer", 2): Net(layers=2, p_inter=P)}
    fns = {k: compiled(n) for k, n in nets.items()}
    for i, mode in enumerate(MODES):
        b.add(mode, "off", fns[("off", 1)][i])
        b.add(mode, "input", fns[("input", 1)][i], note=f"{api}.Dropout on x", against=(mode, "off", 1, ""),
              comparison="input dropout vs off")
        b.add(mode, "off", fns[("off", 2)][i], layers=2)
        b.add(mode, "inter-layer", fns[("inter-layer", 2)][i], layers=2, note=f"{api}.Dropout between two {api}.RNN",
              against=(mode, "off", 2, ""), comparison="inter-layer dropout vs off (2 layers)")
    b.na("recurrent", f"{info.name} has no recurrent dropout knob (a custom cell would be user code)")
    return b


def flax_nnx(info, size):
    """nnx.RNN(cell) layers in an nnx.Module, ``nnx.jit`` forward and ``nnx.grad`` (w.r.t. the
    params and x); dropout = nnx.Dropout on the input / between two nnx.RNN layers."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    T, B, H = SIZES[size]
    cell_name = info.options.get("cell") or info.name.split(".")[-1]
    if cell_name not in ("LSTMCell", "OptimizedLSTMCell", "GRUCell"):
        raise NoBuilder(f"no flax.nnx bench builder for {info.name}")
    lstm = cell_name != "GRUCell"

    class Net(nnx.Module):
        def __init__(self, layers=1, p_in=0.0, p_inter=0.0):
            rngs = nnx.Rngs(params=0, dropout=1)
            self.drop_in = nnx.Dropout(p_in, rngs=rngs) if p_in else None
            self.drop_inter = nnx.Dropout(p_inter, rngs=rngs) if p_inter else None
            self.rnns = nnx.List([nnx.RNN(getattr(nnx, cell_name)(H, H, rngs=rngs), time_major=True)
                                  for _ in range(layers)])

        def __call__(self, x):
            zeros = jnp.zeros((B, H), x.dtype)
            carry = (zeros, zeros) if lstm else zeros  # explicit: nnx.RNN's own init draws from rngs
            if self.drop_in is not None:
                x = self.drop_in(x)
            for l, rnn in enumerate(self.rnns):
                if l and self.drop_inter is not None:
                    x = self.drop_inter(x)
                x = rnn(x, initial_carry=carry)
            return x

    x_np, dy_np = rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = jnp.asarray(x_np), jnp.asarray(dy_np)
    fwd = nnx.jit(lambda net, t: net(t))
    grad = nnx.jit(nnx.grad(lambda net, t: jnp.sum(net(t) * dy), argnums=(0, 1)))

    def compiled(net):
        return (lambda: fwd(net, x).block_until_ready(), lambda: jax.block_until_ready(grad(net, x)))

    return _flax_bench(info, size, Net, compiled, "nnx")


