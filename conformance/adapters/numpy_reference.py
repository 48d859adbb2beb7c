"""The reference itself as an adapter path, with dropout drawn by `reference.MaskSampler`.

``reference.LSTM`` / ``reference.GRU`` run ``reference.run`` in the adapter's dtype. Their
dropout knobs are the reference's mask kinds: input, recurrent, output, state_h, state_c and
inter_layer; a session draws every mask from one ``MaskSampler(seed)`` (fixed per sequence,
shared by the gates, unless the options say ``time="step"`` / ``per_gate=True``), successive
training calls draw fresh masks, evaluation calls draw none.

This path is the oracles' and the statistics' ground truth: its fingerprint is known by
construction, and `MISTAKES` builds deliberately wrong samplers (rate off by 0.01, per-step
instead of per-sequence, one mask for all batch rows, no scale, scale 1/p, c masked instead of
h, dropout in evaluation mode) for the calibration meta-tests.
"""
from __future__ import annotations

import numpy as np

import reference

from conformance.adapters.base import BaseAdapter

KNOBS = ("input", "recurrent", "output", "state_h", "state_c", "inter_layer")
MISTAKES = ("rate+0.01", "per_step", "shared_rows", "no_scale", "scale_1/p", "c_instead_of_h", "eval_drops")


class ReferenceRNN(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32", mistake=None):
        super().__init__(info, device=device, dtype=dtype)
        if mistake is not None and mistake not in MISTAKES:
            raise ValueError(f"mistake must be one of {MISTAKES}, got {mistake!r}")
        self.mistake = mistake
        self.time = info.option("time", "sequence")
        self.per_gate = bool(info.option("per_gate", False))

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        lengths = self.checked_lengths(lengths, x.shape)
        return reference.run(stack, x, h0, c0, lengths=lengths, dtype=np.dtype(self.dtype))

    def dropout_session(self, stack, rates, seed):
        unknown = sorted(set(rates) - set(self.info.dropout))
        if unknown:
            raise ValueError(f"{self.info.name}: unknown dropout knobs {unknown}; it has {self.info.dropout}")
        return ReferenceSession(self, stack, dict(rates), seed)


class ReferenceSession:
    def __init__(self, adapter, stack, rates, seed):
        self.adapter, self.stack, self.rates = adapter, stack, rates
        self.sampler = reference.MaskSampler(seed)
        self.mistake = adapter.mistake
        self.last_masks = None  # the StackMasks of the last call: the oracle's self-test compares

    def __call__(self, x, h0=None, c0=None, training=True):
        a = self.adapter
        stack, x, h0, c0 = a.prepare(self.stack, x, h0, c0)
        masks = self._masks(stack, x.shape[0], x.shape[1]) if training or self.mistake == "eval_drops" else None
        self.last_masks = masks
        return reference.run(stack, x, h0, c0, masks=masks, dtype=np.dtype(a.dtype))

    def _masks(self, stack, steps, batch):
        rates = {k: v for k, v in self.rates.items() if v}
        if self.mistake == "rate+0.01":
            rates = {k: min(1.0, v + 0.01) for k, v in rates.items()}
        if self.mistake == "c_instead_of_h" and "state_h" in rates:
            rates["state_c"] = rates.pop("state_h")
        inter = rates.pop("inter_layer", 0.0)
        time = "step" if self.mistake == "per_step" else self.adapter.time
        masks = self.sampler.stack_masks(stack, 1 if self.mistake == "shared_rows" else batch, steps=steps,
                                         time=time, per_gate=self.adapter.per_gate, inter_layer=inter, **rates)
        return _transform(masks, batch, self.mistake, self.rates)


def _transform(masks, batch, mistake, rates):
    """Apply the value mistakes to every mask of a StackMasks (and repeat a shared row)."""
    from dataclasses import replace

    def fix(m):
        if m is None:
            return None
        v = np.asarray(m.values, np.float64)
        if mistake == "shared_rows":
            v = np.repeat(v, batch, axis=-2)
        if mistake in ("no_scale", "scale_1/p", "rate+0.01"):
            kept, p = v != 0, _rate_of(v)
            value = {"no_scale": 1.0, "scale_1/p": 1.0 / p if p else 1.0,
                     "rate+0.01": 1.0 / (1.0 - (p - 0.01))}[mistake]  # drawn at p + 0.01, scaled as for p
            v = np.where(kept, value, 0.0)
        return replace(m, values=v)

    layers = [[None if lm is None else replace(lm, **{k: fix(getattr(lm, k)) for k in
                                                   ("input", "recurrent", "output", "state_h", "state_c")})
               for lm in row] for row in (masks.layers or [])]
    inter = [fix(m) for m in (masks.inter_layer or [])]
    return replace(masks, layers=layers or masks.layers, inter_layer=inter or masks.inter_layer)


def _rate_of(v):
    """The drop rate p a scaled mask was drawn with: its kept value is 1/(1-p)."""
    kept = v[v != 0]
    return 0.0 if kept.size == 0 else 1.0 - 1.0 / float(kept.flat[0])


def make(info, *, device="cpu", dtype="float32"):
    return ReferenceRNN(info, device=device, dtype=dtype)


def info(cell, **options):
    """The AdapterInfo of the reference path for `cell` (not in the registry: the suites would
    compare the reference with itself); `options` may set time="step" / per_gate=True."""
    from conformance.adapters.base import AdapterInfo

    knobs = KNOBS if cell == "lstm" else tuple(k for k in KNOBS if k != "state_c")
    return AdapterInfo(name=f"reference.{cell.upper()}", framework="numpy", distribution="numpy", cell=cell,
                       factory=__name__ + ":make", options=options, dropout=knobs,
                       features=frozenset({"stacked", "bidirectional", "initial_state", "projection", "float64"}
                                          if cell == "lstm" else {"stacked", "bidirectional", "initial_state",
                                                                  "reset_before", "float64"}))
