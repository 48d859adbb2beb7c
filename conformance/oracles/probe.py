"""Probe-weight mask recovery: the black-box oracle (DESIGN.md "Three mask oracles", 3).

Probe weights make a layer's output an invertible function of the masked signal, so the
masks a framework applied can be read back from its outputs through nothing but its weight
loader (fused kernels included). Every probe is a canonical stack; `recover` inverts the
outputs of a run with it. Saturated gates use a bias of +-SAT (sigmoid is then exactly 1 or
0 in float32). A unit block carries the probe through ONE gate ("route"); several blocks in
one call route the same mask element through different gates, which shows gate sharing.

Probes (K probed elements; LSTM routes g, i, o; GRU routes n, and r when reset_after):

    input       one layer, I = K, H = K * routes: unit j of each block reads x[j] through its
                route's gate (input weights diag(a)); no recurrence. Recovered: the multiplier
                on x[j] as each gate saw it, per step, (T, routes, B, K).
    recurrent   one layer, no input weights: block 0 ("g"/"n" route, bias 0.5 so h stays
                > 0.4) reads its own h_{t-1}[j] through the recurrent kernel, every other
                block reads block 0's h_{t-1}[j]; h_{-1} = h0 = 0.5. Recovered: the
                multiplier on h_{t-1}[j] per gate, (T, routes, B, K); needs unmasked outputs.
    constant    one layer, no input or recurrent weights: h is a known constant h*, c = c*.
                Recovered: output multipliers y / h* (T, B, H), state multipliers
                h_n / h*, c_n / c* (B, H).
    inter_layer two layers of K units: layer 0 is deterministic (g route, h1 = tanh(tanh(a x))
                for an LSTM, tanh(a x) for a GRU), layer 1 reads it through the g / n route.
                Recovered: the multiplier on layer 1's input (T, B, K).
    cell        (LSTM) one layer of K units, no input or recurrent weights, the forget gate
                OPEN at a known phi = sigmoid(b_f) with phi * scale <= 0.5, i = o = 1,
                g = g* = tanh(1), c0 = 0.5: c_t = phi * m_t * c_{t-1} + g*, h_t = tanh(c_t),
                so the cell state is carried to the output (every other probe closes the
                forget gate, which hides a mask on c). Recovered: the multiplier m_t on the
                carried c_{t-1} for t >= 1, (T-1, B, K) ("recurrent_c"); c_{t-1} >= g* keeps
                it readable.

The readouts assume the outputs themselves are not masked (the constant probe tells); each
recovered multiplier is 0 (dropped) or the scale (kept), and `deviation` is the distance of
the worst element from {0, scale}.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.params import GRUWeights, LSTMWeights

SAT = 30.0
G_BIAS = 1.0  # a constant gate: g = tanh(1) (LSTM) / n = tanh(1) (GRU)
REC_BIAS = 0.5  # the recurrent probe's self-feeding block keeps h > 0.4
LSTM_ROUTES = ("g", "i", "o")
LSTM_GATE = {"i": 0, "f": 1, "g": 2, "o": 3}
GRU_GATE = {"r": 0, "z": 1, "n": 2}
KINDS = ("input", "recurrent", "constant", "inter_layer", "cell")
C0 = 0.5  # the cell probe's initial cell state


def routes(cell, reset_after=True):
    return LSTM_ROUTES if cell == "lstm" else (("n", "r") if reset_after else ("n",))


def gain(scale):
    """Input weight a with a * scale <= 0.5: pre-activations stay where tanh/sigmoid invert well."""
    return 0.5 / max(1.0, scale) if np.isfinite(scale) else 0.5


@dataclass
class Probe:
    kind: str
    cell: str
    stack: list
    K: int
    a: float
    routes: tuple
    x: np.ndarray
    h0: np.ndarray | None
    c0: np.ndarray | None


def _lstm_biases(H, K, rts, constant=False, rec=False):
    b = np.zeros(4 * H)
    for k, route in enumerate(rts):
        units = slice(k * K, (k + 1) * K)
        gi, gf, gg, go = (LSTM_GATE[g] * H for g in "ifgo")
        b[gf:gf + H][units] = -SAT  # forget closed everywhere
        b[gi:gi + H][units] = SAT if route != "i" else 0.0
        b[go:go + H][units] = SAT if route != "o" else 0.0
        b[gg:gg + H][units] = {"g": REC_BIAS if rec else 0.0, "i": SAT, "o": G_BIAS}[route]
        if constant:
            b[gg:gg + H][units] = G_BIAS
    return b


def _gru_biases(H, K, rts, constant=False, rec=False):
    b_x, b_h = np.zeros(3 * H), np.zeros(3 * H)
    gr, gz, gn = (GRU_GATE[g] * H for g in "rzn")
    for k, route in enumerate(rts):
        units = slice(k * K, (k + 1) * K)
        b_x[gz:gz + H][units] = -SAT  # z shut: h = n
        b_x[gr:gr + H][units] = SAT if route != "r" else 0.0
        b_x[gn:gn + H][units] = REC_BIAS if (rec and route == "n") else (G_BIAS if constant else 0.0)
        b_h[gn:gn + H][units] = 1.0 if route == "r" else 0.0
    return b_x, b_h


def _route_rows(cell, H, K, k, route):
    """Rows (in W / R) of gate `route` for block k's K units."""
    gate = (LSTM_GATE if cell == "lstm" else GRU_GATE)[route]
    start = gate * H + k * K
    return slice(start, start + K)


def build(kind, cell, K, batch, steps, scale, seed=0, reset_after=True, initial_state=True):
    """The probe of `kind` for masks of scale `scale` (1/(1-p)), its input and initial state.
    With ``initial_state=False`` (a path without the "initial_state" feature) no h0 / c0 is
    given: the recurrent probe then starts from h = 0 and recovers steps 1..T-1 only."""
    rng = np.random.default_rng(seed)
    a = gain(scale)
    rts = routes(cell, reset_after) if kind in ("input", "recurrent") else ("g" if cell == "lstm" else "n",)
    H = K * len(rts)
    G = 4 if cell == "lstm" else 3
    x = rng.uniform(0.5, 1.0, (steps, batch, K)) * rng.choice([-1.0, 1.0], (steps, batch, K))
    h0 = c0 = None
    if kind == "constant":
        w = _weights(cell, np.zeros((G * H, K)), np.zeros((G * H, H)), H, K, rts, constant=True, reset_after=reset_after)
        return Probe(kind, cell, [[w]], K, a, rts, x, None, None)
    if kind == "input":
        W = np.zeros((G * H, K))
        for k, route in enumerate(rts):
            W[_route_rows(cell, H, K, k, route)] = a * np.eye(K)
        w = _weights(cell, W, np.zeros((G * H, H)), H, K, rts, reset_after=reset_after)
        return Probe(kind, cell, [[w]], K, a, rts, x, None, None)
    if kind == "recurrent":
        R = np.zeros((G * H, H))
        for k, route in enumerate(rts):
            R[_route_rows(cell, H, K, k, route), :K] = a * np.eye(K)  # every block reads block 0
        w = _weights(cell, np.zeros((G * H, K)), R, H, K, rts, rec=True, reset_after=reset_after)
        if initial_state:
            h0 = np.full((1, batch, H), 0.5)
            c0 = np.zeros((1, batch, H)) if cell == "lstm" else None
        return Probe(kind, cell, [[w]], K, a, rts, x, h0, c0)
    if kind == "inter_layer":
        W0 = np.zeros((G * K, K))
        W0[_route_rows(cell, K, K, 0, rts[0])] = 0.5 * np.eye(K)
        W1 = np.zeros((G * K, K))
        W1[_route_rows(cell, K, K, 0, rts[0])] = a * np.eye(K)
        zeros = np.zeros((G * K, K))
        layers = [[_weights(cell, W, zeros, K, K, rts, reset_after=reset_after)] for W in (W0, W1)]
        return Probe(kind, cell, layers, K, a, rts, x, None, None)
    if kind == "cell":
        if cell != "lstm":
            raise ValueError("the cell probe needs an LSTM (a GRU carries no cell state)")
        b = np.zeros(4 * K)
        gi, gf, gg, go = (LSTM_GATE[g] * K for g in "ifgo")
        b[gi:gi + K], b[go:go + K], b[gg:gg + K] = SAT, SAT, G_BIAS
        b[gf:gf + K] = cell_forget_bias(scale)
        w = LSTMWeights(W=np.zeros((4 * K, K)), R=np.zeros((4 * K, K)), b_x=b, b_h=np.zeros(4 * K))
        if initial_state:
            h0, c0 = np.zeros((1, batch, K)), np.full((1, batch, K), C0)
        return Probe(kind, cell, [[w]], K, a, ("f",), x, h0, c0)
    raise ValueError(f"probe kind must be one of {KINDS}, got {kind!r}")


def cell_forget_bias(scale):
    """The cell probe's forget-gate bias: phi = sigmoid(b) = 0.5 / scale (0.5 for no scale),
    rounded to float32 so that every adapter sees the same phi."""
    phi = 0.5 / max(1.0, scale) if np.isfinite(scale) else 0.5
    return float(np.float32(np.log(phi) - np.log1p(-phi)))


def _sigmoid(b):
    return 1.0 / (1.0 + np.exp(-b))


def _weights(cell, W, R, H, K, rts, constant=False, rec=False, reset_after=True):
    if cell == "lstm":
        return LSTMWeights(W=W, R=R, b_x=_lstm_biases(H, K, rts, constant, rec), b_h=np.zeros(4 * H))
    b_x, b_h = _gru_biases(H, K, rts, constant, rec)
    return GRUWeights(W=W, R=R, b_x=b_x, b_h=b_h, reset_after=reset_after)


# ---------------------------------------------------------------- readouts

def _logit(p):
    return np.log(p) - np.log1p(-p)


def _pre_activation(cell, route, h, h_prev_block0=None, bias=0.0):
    """The route gate's pre-activation (minus its bias) from a block's output h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if cell == "lstm":
            if route == "g":
                return np.arctanh(np.arctanh(h)) - bias
            if route == "i":
                return _logit(np.arctanh(h))
            if route == "o":
                return _logit(h / np.tanh(np.tanh(G_BIAS)))
        else:
            if route == "n":
                return np.arctanh(h) - bias
            if route == "r":
                return _logit(np.arctanh(h))
    raise ValueError(f"no readout for route {route!r} of a {cell}")


def recover(probe, result):
    """Recovered multipliers from `result` (a reference.Result of running probe.stack on
    probe.x, probe.h0, probe.c0): a dict of arrays, see the module docstring. Where a masked
    output hides the signal the values are not finite (the fingerprint then says so)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _recover(probe, result)


def _recover(probe, result):
    y = np.asarray(result.y, np.float64)
    K, rts = probe.K, probe.routes
    if probe.kind == "constant":
        h_star = np.tanh(np.tanh(G_BIAS)) if probe.cell == "lstm" else np.tanh(G_BIAS)
        out = {"output": y / h_star, "state_h": np.asarray(result.h_n, np.float64)[0] / h_star}
        if probe.cell == "lstm":
            out["state_c"] = np.asarray(result.c_n, np.float64)[0] / np.tanh(G_BIAS)
        return out
    if probe.kind == "input":
        per = [_pre_activation(probe.cell, r, y[:, :, k * K:(k + 1) * K]) / (probe.a * probe.x)
               for k, r in enumerate(rts)]
        return {"input": np.stack(per, axis=1)}
    if probe.kind == "recurrent":
        if probe.h0 is None:  # h_(-1) = 0 carries no signal: steps 1.. only
            prev, y = y[:-1, :, :K], y[1:]
        else:
            prev = np.concatenate([probe.h0[:, :, :K], y[:-1, :, :K]], axis=0)  # block 0's h_{t-1}
        per = [_pre_activation(probe.cell, r, y[:, :, k * K:(k + 1) * K],
                               bias=REC_BIAS if k == 0 else 0.0) / (probe.a * prev) for k, r in enumerate(rts)]
        return {"recurrent": np.stack(per, axis=1)}
    if probe.kind == "inter_layer":
        h1 = np.tanh(np.tanh(0.5 * probe.x)) if probe.cell == "lstm" else np.tanh(0.5 * probe.x)
        return {"inter_layer": _pre_activation(probe.cell, rts[0], y) / (probe.a * h1)}
    if probe.kind == "cell":
        gf = LSTM_GATE["f"] * K
        phi = _sigmoid(float(probe.stack[0][0].b_x[gf]))
        c = np.arctanh(y)  # o = 1: h_t = tanh(c_t)
        # from step 1 on: a mask on the carried state applied after each update (as the
        # reference's state_c) and one applied to c_(t-1) before it read alike there; c0 differs
        return {"recurrent_c": (c[1:] - np.tanh(G_BIAS)) / (phi * c[:-1])}
    raise ValueError(probe.kind)
