"""Hypothesis strategies for adapter cases, restricted to what an adapter path supports.

Cases are `conformance.core.strategies.Case` objects (structure + seed; every array is rebuilt
from the seed by ``Case.build()``), so a failing case's repr is its repro. `rounded` gives
the arrays of a case rounded to float32 (and back in float64): the framework and the float64
reference then see exactly the same numbers, and only arithmetic error remains.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from conformance.core.strategies import Case

__all__ = ["parity_cases", "full_case", "dtypes_of", "rounded", "case_shape", "repro_snippet", "lengths_of",
           "cotangents", "batch_permutation", "permute_rows"]

SEEDS = st.integers(0, 2**32 - 1)
CELL_CLIPS = (0.5, 1.0, 3.0)
FORGET_BIASES = (1.0, -0.5)


def dtypes_of(info):
    """Working dtypes an adapter path runs in: float32, plus float64 where declared."""
    return ("float32", "float64") if "float64" in info.features else ("float32",)


@st.composite
def parity_cases(draw, info, max_steps=6, max_batch=3, max_size=5, max_layers=2):
    """A dropout-off `Case` using only features `info` declares: always possibly one layer, one
    direction, zero initial state; stacked / bidirectional / initial state / projection /
    peephole / forget_bias / cell_clip / reset-before / lengths (1..T, unsorted, with the
    path's padding policy) where supported."""
    f = info.features
    hidden = draw(st.integers(1, max_size))
    steps, batch = draw(st.integers(1, max_steps)), draw(st.integers(1, max_batch))
    kw = dict(cell=info.cell, steps=steps, batch=batch,
              input_size=draw(st.integers(1, max_size)), hidden_size=hidden,
              num_layers=draw(st.integers(1, max_layers)) if "stacked" in f else 1,
              bidirectional=draw(st.booleans()) if "bidirectional" in f else False,
              initial_state=draw(st.booleans()) if "initial_state" in f else False,
              seed=draw(SEEDS))
    if "lengths" in f and draw(st.booleans()):
        kw["lengths"] = tuple(draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch)))
        kw["padding"] = info.padding
    if info.cell == "lstm":
        if "projection" in f and hidden > 1 and draw(st.booleans()):
            kw["proj_size"] = draw(st.integers(1, hidden - 1))  # torch: proj_size < hidden_size
        if "peephole" in f:
            kw["peephole"] = draw(st.booleans())
        if "forget_bias" in f and draw(st.booleans()):
            kw["forget_bias"] = draw(st.sampled_from(FORGET_BIASES))
        if "cell_clip" in f and draw(st.booleans()):
            kw["cell_clip"] = draw(st.sampled_from(CELL_CLIPS))
    else:
        kw["reset_after"] = draw(st.booleans()) if "reset_before" in f else True
        kw["hidden_bias"] = draw(st.booleans())
    return Case(**kw)


def full_case(info, steps=6, batch=3, input_size=4, hidden_size=5, seed=20260101):
    """One case with every feature `info` declares switched on (two layers, bidirectional,
    initial state, projection, peephole, forget_bias, cell_clip 1.0, reset-before, unsorted
    lengths including 1 and T): run as an explicit example, so each declared feature is
    exercised on every run, whatever the draws."""
    f = info.features
    kw = dict(cell=info.cell, steps=steps, batch=batch, input_size=input_size, hidden_size=hidden_size,
              num_layers=2 if "stacked" in f else 1, bidirectional="bidirectional" in f,
              initial_state="initial_state" in f, seed=seed)
    if "lengths" in f:
        kw.update(lengths=tuple(([max(1, steps - 2), steps, 1] * batch)[:batch]), padding=info.padding)
    if info.cell == "lstm":
        kw.update(proj_size=hidden_size - 2 if "projection" in f else None, peephole="peephole" in f,
                  forget_bias=1.0 if "forget_bias" in f else 0.0, cell_clip=1.0 if "cell_clip" in f else None)
    else:
        kw["reset_after"] = "reset_before" not in f
    return Case(**kw)


def rounded(case):
    """(stack, x, h0, c0) of `case` with every array rounded to float32, held in float64.
    h0 / c0 are None without an initial state (c0 None for a GRU)."""
    stack, x, kwargs = case.build()
    r = lambda a: None if a is None else np.asarray(a, np.float32).astype(np.float64)  # noqa: E731
    stack = [[_round_weights(w) for w in layer] for layer in stack]
    return stack, r(x), r(kwargs.get("h0")), r(kwargs.get("c0"))


def lengths_of(case):
    """{"lengths": int array} for a case with lengths, else {}: the adapter's keyword argument."""
    return {} if case.lengths is None else {"lengths": np.asarray(case.lengths, np.int64)}


def cotangents(case, stack, dtype=np.float32):
    """(dy, dh_n, dc_n) for a gradient check, drawn from the case's seed + 2 and rounded to
    `dtype` (held in float64); dc_n is None for a GRU."""
    rng = np.random.default_rng(case.seed + 2)
    n, hout, H = sum(len(layer) for layer in stack), stack[0][0].output_size, stack[0][0].hidden_size
    r = lambda *shape: np.asarray(rng.normal(size=shape), dtype).astype(np.float64)  # noqa: E731
    D = len(stack[-1])
    return (r(case.steps, case.batch, D * hout), r(n, case.batch, hout),
            r(n, case.batch, H) if case.cell == "lstm" else None)


def batch_permutation(case):
    """A non-identity permutation of the case's batch rows (batch >= 2), from its seed."""
    if case.batch < 2:
        raise ValueError(f"batch_permutation: needs at least 2 rows, the case has {case.batch}")
    rng = np.random.default_rng(case.seed + 3)
    while True:
        perm = rng.permutation(case.batch)
        if (perm != np.arange(case.batch)).any():
            return perm


def permute_rows(perm, x, h0, c0, lengths):
    """(x, h0, c0, {"lengths": ...} or {}) with the batch rows taken in `perm` order."""
    take = lambda a: None if a is None else np.take(a, perm, axis=1)  # noqa: E731
    return take(x), take(h0), take(c0), ({} if lengths is None else {"lengths": np.asarray(lengths)[perm]})


def _round_weights(w):
    from dataclasses import replace

    return replace(w, **{k: np.asarray(getattr(w, k), np.float32).astype(np.float64) for k in w.array_names()})


def case_shape(stack, steps):
    """(steps, fan_in) for the tolerance: steps = sequential cell evaluations along the longest
    dependency path into any output (T per layer, T * L in all; see conformance/core/tolerances.py),
    fan_in = the largest input_size + Hout of any layer (terms summed into one pre-activation;
    peepholes and biases add a bounded few more)."""
    return steps * len(stack), max(w.input_size + w.output_size for layer in stack for w in layer)


def repro_header(case):
    """The first lines of every adapter repro: imports, and `case` rebuilt as stack, x, h0, c0."""
    return [
        "import numpy as np, reference",
        "from conformance.adapters import registry",
        "from conformance.core.adapter_strategies import lengths_of, rounded",
        "from conformance.core.strategies import Case",
        f"case = {case.short()}",
        "stack, x, h0, c0 = rounded(case)",
    ]


def repro_snippet(name, case, dtype="float32"):
    """Python that rebuilds `case`, runs adapter `name` and the reference, prints the errors."""
    return "\n".join(repro_header(case) + [
        f"got = registry.load({name!r}, dtype={dtype!r}).forward(stack, x, h0, c0, **lengths_of(case))",
        "want = reference.run(stack, x, h0, c0, padding=case.padding, **lengths_of(case))",
        "for k in ('y', 'h_n', 'c_n'):",
        "    if getattr(want, k) is not None:",
        "        print(k, np.max(np.abs(np.asarray(getattr(got, k), np.float64) - getattr(want, k))))",
    ])
