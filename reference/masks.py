"""Dropout masks as explicit arrays, and a seeded sampler that draws them.

A mask holds already-scaled values (inverted dropout: 0 or 1/(1-p)); the model
functions never draw random numbers. Its structure is stated, not guessed from shapes:

    time='sequence', per_gate=False   values (B, N)       one mask for all steps (variational)
    time='step',     per_gate=False   values (T, B, N)    a fresh mask every step
    time='sequence', per_gate=True    values (G, B, N)    one mask per gate
    time='step',     per_gate=True    values (T, G, B, N)

Per-step masks are indexed by time position (the position of the input), not by the
order in which a reverse direction visits the steps.

Where each kind applies (one layer, one direction; see `rnn.run`):
    input      x_t before the input kernel                  (N = input size, gates allowed)
    recurrent  h_{t-1} inside the recurrent matmul only     (N = Hout, gates allowed);
               the carried state itself is not dropped
    output     the layer's output y_t; the recurrence is untouched          (N = Hout)
    state_h    the h carried to the next step (and returned as h_n)         (N = Hout)
    state_c    the c carried to the next step (and returned as c_n, LSTM)   (N = H)
    inter-layer  between stacked layers, on the (concatenated) output of each layer but
               the last, after h_n/c_n were taken                           (N = D*Hout)

Rate 1 means "drop everything": an all-zero mask (no infinite scale), as torch's
``F.dropout(x, p=1)``. Rate 0 gives all ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Optional, Sequence

import numpy as np

from ._checks import as_float_array, check_choice, check_positive_int, check_rate

TIME_STRUCTURES = ("sequence", "step")


@dataclass(frozen=True)
class Mask:
    values: np.ndarray
    time: str = "sequence"
    per_gate: bool = False

    def expected_shape(self, steps, gates, batch, size):
        shape = (batch, size)
        if self.per_gate:
            shape = (gates,) + shape
        if self.time == "step":
            shape = (steps,) + shape
        return shape

    def full(self, steps, gates, batch, size, dtype, name="mask"):
        """Validated view of shape (T, G, B, N) (broadcast, no copy)."""
        check_choice(f"{name}.time", self.time, TIME_STRUCTURES)
        if self.per_gate and gates == 1:
            raise ValueError(f"{name}.per_gate: this mask kind has no gates; use per_gate=False")
        shape = self.expected_shape(steps, gates, batch, size)
        vals = as_float_array(f"{name}.values", self.values, dtype, shape=shape)
        if self.time == "sequence":
            vals = vals[None]
        if not self.per_gate:
            vals = vals[:, None]
        return np.broadcast_to(vals, (steps if self.time == "step" else 1, gates, batch, size))

    def per_step(self, steps):
        """The same mask written out per step (values repeated over time)."""
        if self.time == "step":
            return self
        return replace(self, values=np.repeat(np.asarray(self.values)[None], steps, axis=0), time="step")


@dataclass
class LayerMasks:
    """Masks of one layer-direction; None means no dropout of that kind."""

    input: Optional[Mask] = None
    recurrent: Optional[Mask] = None
    output: Optional[Mask] = None
    state_h: Optional[Mask] = None
    state_c: Optional[Mask] = None

    KINDS = ("input", "recurrent", "output", "state_h", "state_c")

    def any(self):
        return any(getattr(self, k) is not None for k in self.KINDS)


@dataclass
class StackMasks:
    """layers[l][d]: LayerMasks; inter_layer[l]: Mask on layer l's output (l < L-1)."""

    layers: List[List[LayerMasks]] = field(default_factory=list)
    inter_layer: List[Optional[Mask]] = field(default_factory=list)


def keep_values(rng, rate, shape, dtype=np.float64):
    """Already-scaled Bernoulli(1 - rate) values: 0 or 1/(1 - rate); rate 1 gives zeros."""
    rate = check_rate("rate", rate)
    if rate == 1.0:
        return np.zeros(shape, dtype=dtype)
    keep = rng.random(shape) >= rate
    return (keep / (1.0 - rate)).astype(dtype)


class MaskSampler:
    """Seeded sampler for every mask kind (numpy.random.Generator, PCG64)."""

    def __init__(self, seed):
        """`seed`: what numpy.random.default_rng takes (a non-negative integer or a sequence of
        them, a SeedSequence, BitGenerator or Generator; None draws fresh entropy), but not a bool."""
        try:
            if isinstance(seed, (bool, np.bool_)):
                raise TypeError("bool")
            rng = np.random.default_rng(seed)
        except (TypeError, ValueError):
            raise ValueError(f"seed: expected a non-negative integer (or a sequence of them, a numpy "
                             f"SeedSequence or Generator), got {seed!r}") from None
        self.seed = seed
        self.rng = rng

    def mask(self, rate, batch, size, *, steps=None, time="sequence", gates=1, dtype=np.float64):
        """One mask. time='step' needs `steps`; gates > 1 gives one independent mask per gate."""
        check_choice("time", time, TIME_STRUCTURES)
        batch = check_positive_int("batch", batch)
        size = check_positive_int("size", size)
        gates = check_positive_int("gates", gates)
        shape = (batch, size)
        if gates > 1:
            shape = (gates,) + shape
        if time == "step":
            if steps is None:
                raise ValueError("steps: required when time='step'")
            shape = (check_positive_int("steps", steps),) + shape
        return Mask(keep_values(self.rng, rate, shape, dtype), time=time, per_gate=gates > 1)

    def layer_masks(self, batch, input_size, hidden_size, output_size=None, *, steps=None, time="sequence",
                    gates=1, input=0.0, recurrent=0.0, output=0.0, state_h=0.0, state_c=0.0):
        """LayerMasks with the given rates (0 gives no mask of that kind)."""
        hout = output_size or hidden_size
        kw = dict(steps=steps, time=time)

        def draw(rate, size, g=1):
            return self.mask(rate, batch, size, gates=g, **kw) if rate else None

        return LayerMasks(
            input=draw(input, input_size, gates), recurrent=draw(recurrent, hout, gates),
            output=draw(output, hout), state_h=draw(state_h, hout), state_c=draw(state_c, hidden_size),
        )

    def stack_masks(self, stack: Sequence[Sequence], batch, *, steps=None, time="sequence", per_gate=False,
                    inter_layer=0.0, inter_layer_time="step", **rates):
        """StackMasks for a weight stack: the same rates for every layer-direction."""
        layers = []
        for layer in stack:
            row = []
            for w in layer:
                gates = len(w.gates) if per_gate else 1
                row.append(self.layer_masks(batch, w.input_size, w.hidden_size, w.output_size,
                                            steps=steps, time=time, gates=gates, **rates))
            layers.append(row)
        inter = []
        for layer in stack[:-1]:
            width = len(layer) * layer[0].output_size
            inter.append(self.mask(inter_layer, batch, width, steps=steps, time=inter_layer_time)
                         if inter_layer else None)
        return StackMasks(layers=layers, inter_layer=inter)
