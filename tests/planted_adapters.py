"""A kernel author's NumPy LSTM / GRU with three dropout knobs, and copies of it with one planted
bug each (tests/test_kernel_author.py runs them through the public adapter API only).

Knobs (the semantics the author means, declared in ``semantics``):

    dropout             the layer-0 input x_t, one mask per sequence, shared by the gates
    recurrent_dropout   h_(t-1) as the gates read it, one mask per sequence, shared by the gates
    layer_dropout       the input of every layer above the first, a fresh mask per step

Kept elements are scaled 1/(1-p); a session's masks come from ``np.random.default_rng(seed)``;
evaluation calls draw nothing; padded steps (lengths) output zeros and carry the last valid
state ("zero_output"). `BUGS` lists the planted bugs: ``PLANTED[bug]`` is the AdapterInfo of
the copy with that bug (its ``options["bug"]``), declaring the same semantics as the correct one.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

import reference
from conformance.adapters.base import AdapterInfo, BaseAdapter

KNOBS = ("dropout", "recurrent_dropout", "layer_dropout")
_SCALED = "rows independent, kept value 1/(1-p)"
_MODES = {"evaluation mode": "nothing dropped", "seeds": "same seed same masks; other seed other masks",
          "inference call": "does not advance the random state"}


def _declared(cell):
    none = {t: "none" for t in ("input", "recurrent", "inter_layer", "output", "state_h")}
    if cell == "lstm":
        none.update(recurrent_c="none", state_c="none")
    seq = "per sequence, gates shared, " + _SCALED
    return {
        "dropout": {**none, "input": seq, "inter_layer": "unknown (input masked)", **_MODES,
                    "padded steps": "zero_output"},
        "recurrent_dropout": {**none, "recurrent": seq, **_MODES},
        "layer_dropout": {**none, "inter_layer": "per step, " + _SCALED, **_MODES},
        "dropout+recurrent_dropout+layer_dropout": {**none, "input": seq, "recurrent": seq,
                                                    "inter_layer": "unknown (input masked)", **_MODES},
    }


def info(cell, name=None, bug=None, semantics=True):
    return AdapterInfo(name=name or f"planted.{cell.upper()}", framework="numpy", distribution="numpy", cell=cell,
                       factory=__name__ + ":make", version="1.0", padding="zero_output",
                       features=frozenset({"stacked", "initial_state", "lengths", "float64"}),
                       dropout=KNOBS, options={} if bug is None else {"bug": bug},
                       semantics=_declared(cell) if semantics else {})


LSTM = info("lstm")
GRU = info("gru")
GRU_UNDECLARED = info("gru", "planted.GRU.undeclared", semantics=False)  # semantics come from a file, or nowhere

#: bug -> (cell, what is wrong)
BUGS = {
    # the universal invariants
    "unscaled": ("lstm", "kept values 1 instead of 1/(1-p)"),
    "scale_1/p": ("lstm", "kept values 1/p"),
    "rate_off": ("lstm", "masks drawn at p + 0.01"),
    "eval_drops": ("lstm", "masks drawn in evaluation mode too"),
    "unseeded": ("lstm", "the session's generator is not seeded"),
    "seed_ignored": ("lstm", "the session's generator always seeded with 0"),
    "shared_rows": ("lstm", "one mask for all batch rows"),
    "gru_shared_rows": ("gru", "one mask for all batch rows (GRU)"),
    "recurrent_masks_input": ("lstm", "recurrent_dropout also masks x_t"),
    "mask_on_c": ("lstm", "recurrent_dropout masks c_(t-1) instead of h_(t-1)"),
    "layer_after_last": ("lstm", "layer_dropout also masks the last layer's output"),
    "ignored": ("lstm", "recurrent_dropout is ignored"),
    # declared properties
    "per_step": ("lstm", "the input mask redrawn at every step"),
    "per_gate": ("lstm", "one recurrent mask per gate"),
    "layer_per_sequence": ("lstm", "the inter-layer mask fixed for the sequence"),
    "inference_advances": ("lstm", "an evaluation call advances the generator"),
    "padding_carry": ("lstm", "padded steps output the carried h"),
    # layouts
    "gates_swapped": ("lstm", "gates i and f swapped"),
    "bias_h_ignored": ("lstm", "b_h left out"),
    "recurrent_transposed": ("lstm", "each gate's recurrent block transposed"),
    "gru_reset_before": ("gru", "the GRU's reset gate applied before the recurrent matmul"),
}
PLANTED = {bug: info(cell, f"planted.{cell.upper()}.{bug.replace('/', '_')}", bug) for bug, (cell, _) in BUGS.items()}
for _bug, _info in PLANTED.items():  # module attributes, for --adapter planted_adapters:<NAME>
    globals()[_info.name.split(".", 2)[2].upper()] = _info


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


class NumpyRNN(BaseAdapter):
    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        return self._run(stack, x, h0, c0, lengths, {}, None, training=False)

    def dropout_session(self, stack, rates, seed):
        unknown = sorted(set(rates) - set(KNOBS))
        if unknown:
            raise ValueError(f"{self.info.name}: unknown dropout knobs {unknown}; it has {KNOBS}")
        bug = self.info.option("bug")
        rng = np.random.default_rng(None if bug == "unseeded" else 0 if bug == "seed_ignored" else seed)

        def session(x, h0=None, c0=None, training=True):
            return self._run(stack, x, h0, c0, None, dict(rates), rng, training)
        return session

    def _run(self, stack, x, h0, c0, lengths, rates, rng, training):
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        lengths = self.checked_lengths(lengths, x.shape)
        bug = self.info.option("bug")
        T, B, _ = x.shape
        drawing = training or bug == "eval_drops"
        if bug == "inference_advances" and not training and rng is not None:
            rng.random(1024)

        def mask(knob, shape):
            p = rates.get(knob, 0.0)
            if not p or not drawing:
                return None
            if bug in ("shared_rows", "gru_shared_rows"):
                shape = shape[:-2] + (1,) + shape[-1:]
            keep = rng.random(shape) >= (p + 0.01 if bug == "rate_off" else p)
            value = {"unscaled": 1.0, "scale_1/p": 1.0 / p}.get(bug, 1.0 / (1.0 - p))
            return np.broadcast_to(keep * value, shape[:-2] + (B,) + shape[-1:])

        inp, hs, cs = x, [], []
        for l, (w,) in enumerate(stack):
            H = w.hidden_size
            if l == 0:
                m_in = mask("dropout", (T, B, inp.shape[2]) if bug == "per_step" else (B, inp.shape[2]))
                m_in = None if m_in is None else (m_in if m_in.ndim == 3 else m_in[None])
            else:
                m_in = mask("layer_dropout", (B, inp.shape[2]) if bug == "layer_per_sequence" else (T, B, inp.shape[2]))
                m_in = None if m_in is None else (m_in if m_in.ndim == 3 else m_in[None])
            if bug == "recurrent_masks_input":
                extra = mask("recurrent_dropout", (B, inp.shape[2]))
                m_in = extra[None] if m_in is None and extra is not None else m_in
            G = 4 if w.cell == "lstm" else 3
            m_rec = None if bug == "ignored" else mask("recurrent_dropout", (G, B, H) if bug == "per_gate" else (B, H))
            xin = inp if m_in is None else inp * m_in
            h = np.zeros((B, H), self.dtype) if h0 is None else h0[l]
            c = (np.zeros((B, H), self.dtype) if c0 is None else c0[l]) if w.cell == "lstm" else None
            y = np.zeros((T, B, H), self.dtype)
            for t in range(T):
                if w.cell == "lstm":
                    h_new, c_new = self._lstm_step(w, xin[t], h, c, m_rec, bug)
                else:
                    h_new, c_new = self._gru_step(w, xin[t], h, m_rec, bug), None
                if lengths is None:
                    y[t], h, c = h_new, h_new, c_new
                else:
                    valid = (t < lengths)[:, None]
                    y[t] = np.where(valid, h_new, h if bug == "padding_carry" else 0.0)
                    h = np.where(valid, h_new, h)
                    c = None if c is None else np.where(valid, c_new, c)
            hs.append(h)
            cs.append(c)
            inp = y
        if bug == "layer_after_last":
            m_out = mask("layer_dropout", (T, B, inp.shape[2]))
            inp = inp if m_out is None else inp * m_out
        return reference.Result(y=inp, h_n=np.stack(hs), c_n=np.stack(cs) if stack[0][0].cell == "lstm" else None)

    @staticmethod
    def _lstm_step(w, x, h, c, m_rec, bug):
        H = w.hidden_size
        R = w.R
        if bug == "recurrent_transposed":
            R = np.concatenate([R[k * H:(k + 1) * H].T for k in range(4)])
        b = w.b_x + (0.0 if bug == "bias_h_ignored" or w.b_h is None else w.b_h)
        if bug == "mask_on_c" and m_rec is not None:
            c, m_rec = c * m_rec, None
        if m_rec is not None and m_rec.ndim == 3:  # per gate
            rec = np.concatenate([(h * m_rec[k]) @ R[k * H:(k + 1) * H].T for k in range(4)], axis=1)
        else:
            rec = (h if m_rec is None else h * m_rec) @ R.T
        gates = x @ w.W.T + rec + b
        i, f, g, o = np.split(gates, 4, axis=1)
        if bug == "gates_swapped":
            i, f = f, i
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c_new), c_new

    @staticmethod
    def _gru_step(w, x, h, m_rec, bug):
        H = w.hidden_size
        hm = h if m_rec is None else h * m_rec
        gx = x @ w.W.T + w.b_x
        b_h = np.zeros(3 * H) if w.b_h is None else w.b_h
        gh = hm @ w.R.T + b_h
        r = _sigmoid(gx[:, :H] + gh[:, :H])
        z = _sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        if bug == "gru_reset_before":
            n = np.tanh(gx[:, 2 * H:] + (r * hm) @ w.R[2 * H:].T + b_h[2 * H:])
        else:
            n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1.0 - z) * n + z * h


def make(info=None, *, device="cpu", dtype="float32"):
    return NumpyRNN(info or LSTM, device=device, dtype=dtype)


def without_semantics(info_):
    return replace(info_, semantics={})
