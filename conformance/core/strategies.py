"""Hypothesis strategies for recurrent-layer cases, kept apart from the tests that use them.

Hypothesis draws only the structure of a case (sizes, options, rates, a seed); the arrays
come from a NumPy generator seeded with that seed. A `Case` is therefore small to print,
and `Case.build()` recreates every array exactly: the case's repr is its repro.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

import numpy as np
from hypothesis import strategies as st

import reference as ref

RATES = (0.0, 1e-3, 0.1, 0.5, 0.9, 1.0)


@dataclass(frozen=True)
class Case:
    """One reference configuration. Rates are per layer-direction mask kind."""

    cell: str = "lstm"
    steps: int = 3
    batch: int = 2
    input_size: int = 3
    hidden_size: int = 2
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: Optional[int] = None
    peephole: bool = False
    forget_bias: float = 0.0
    cell_clip: Optional[float] = None
    reset_after: bool = True
    hidden_bias: bool = True
    lengths: Optional[Tuple[int, ...]] = None
    padding: str = "zero_output"
    reverse: bool = False
    go_backwards: bool = False
    initial_state: bool = True
    rates: dict = field(default_factory=dict)
    mask_time: str = "sequence"
    per_gate: bool = False
    inter_layer: float = 0.0
    seed: int = 0

    def weight_kwargs(self):
        if self.cell == "lstm":
            return dict(proj_size=self.proj_size, peephole=self.peephole, forget_bias=self.forget_bias,
                        cell_clip=self.cell_clip)
        return dict(reset_after=self.reset_after, hidden_bias=self.hidden_bias)

    def build(self):
        """(stack, x, run_kwargs) — every array drawn from numpy's generator seeded with `seed`."""
        rng = np.random.default_rng(self.seed)
        stack = ref.random_stack(rng, self.cell, self.input_size, self.hidden_size, self.num_layers,
                                 self.bidirectional, **self.weight_kwargs())
        x = rng.normal(size=(self.steps, self.batch, self.input_size))
        n = self.num_layers * (2 if self.bidirectional else 1)
        hout = stack[0][0].output_size
        kwargs = dict(padding=self.padding, reverse=self.reverse, go_backwards=self.go_backwards)
        if self.initial_state:
            kwargs["h0"] = rng.normal(size=(n, self.batch, hout))
            if self.cell == "lstm":
                kwargs["c0"] = rng.normal(size=(n, self.batch, self.hidden_size))
        if self.lengths is not None:
            kwargs["lengths"] = np.array(self.lengths)
        if any(self.rates.values()) or self.inter_layer:
            sampler = ref.MaskSampler(self.seed + 1)
            kwargs["masks"] = sampler.stack_masks(stack, self.batch, steps=self.steps, time=self.mask_time,
                                                  per_gate=self.per_gate, inter_layer=self.inter_layer,
                                                  **self.rates)
        return stack, x, kwargs

    def short(self):
        """Only the fields that differ from the defaults: a compact, copy-paste repro."""
        default = asdict(Case())
        diff = {k: v for k, v in asdict(self).items() if v != default[k]}
        return "Case(" + ", ".join(f"{k}={v!r}" for k, v in diff.items()) + ")"


@st.composite
def cases(draw, cell=None, max_steps=5, max_batch=3, max_size=4, max_layers=2, masks=True, lengths=True):
    """Any reference configuration: every option of `Case`, sizes kept small for speed."""
    cell = cell or draw(st.sampled_from(["lstm", "gru"]))
    steps = draw(st.integers(1, max_steps))
    batch = draw(st.integers(1, max_batch))
    hidden = draw(st.integers(1, max_size))
    num_layers = draw(st.integers(1, max_layers))
    bidirectional = draw(st.booleans())
    kw = dict(cell=cell, steps=steps, batch=batch, input_size=draw(st.integers(1, max_size)),
              hidden_size=hidden, num_layers=num_layers, bidirectional=bidirectional,
              seed=draw(st.integers(0, 2**32 - 1)), initial_state=draw(st.booleans()))
    if cell == "lstm":
        kw.update(proj_size=draw(st.none() | st.integers(1, hidden)), peephole=draw(st.booleans()),
                  forget_bias=draw(st.sampled_from([0.0, 1.0])), cell_clip=draw(st.none() | st.just(3.0)))
    else:
        kw.update(reset_after=draw(st.booleans()), hidden_bias=draw(st.booleans()))
    if lengths and draw(st.booleans()):
        kw["lengths"] = tuple(draw(st.lists(st.integers(0, steps), min_size=batch, max_size=batch)))
        kw["padding"] = draw(st.sampled_from(ref.POLICIES))
    if not bidirectional:
        direction = draw(st.sampled_from(["forward", "reverse", "go_backwards"]))
        kw["reverse"], kw["go_backwards"] = direction == "reverse", direction == "go_backwards"
    if masks and draw(st.booleans()):
        kinds = ["input", "recurrent", "output", "state_h"] + (["state_c"] if cell == "lstm" else [])
        kw["rates"] = {k: draw(st.sampled_from(RATES)) for k in kinds}
        kw["mask_time"] = draw(st.sampled_from(["sequence", "step"]))
        kw["per_gate"] = draw(st.booleans())
        kw["inter_layer"] = draw(st.sampled_from(RATES)) if num_layers > 1 else 0.0
    return Case(**kw)
