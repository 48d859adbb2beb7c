"""flax behaviours the generic adapter API cannot express, each recorded with its evidence:

- ``seq_lengths`` (linen ``nn.RNN`` and ``nnx.RNN``; every cell; forward, ``reverse`` with
  ``keep_order`` True and False): valid outputs and the returned carry equal the reference,
  but outputs at padded steps are computed straight through the padding (not zeroed), which
  matches none of the reference padding policies. The exact model that does match: the
  reference run with policy "compute" over ``flip_within_lengths(x)`` for a reverse pass
  (each row's valid steps reversed, its padding after them, reversed too), outputs gathered
  back by the same index when ``keep_order``; carry = the state at each row's last valid step.
- ``return_carry``: False returns the outputs alone; True without seq_lengths returns the
  state after step T.
- the nnx ``GRUCell`` has no hidden-side bias (b_hn) although its docstring shows one: with
  b_hn = 0 it equals the reference; a nonzero b_hn cannot be expressed.
- dropout the flax way (``nn.Dropout`` inside a custom cell, ``split_rngs``): masks read back
  from the cell's outputs are per-sequence with ``split_rngs={'dropout': False}`` and per-step
  with True; the layer equals the reference under those masks; drop rates are binomial.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from conformance.core.adapter_strategies import case_shape, rounded
from conformance.core.frameworks import installed_version, require
from conformance.oracles.statistics import ALPHA, rate_test
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

pytestmark = pytest.mark.framework("flax")

EXAMPLES = max(3, settings.default.max_examples // 8)
T, B, I, H = 6, 4, 3, 4  # fixed shapes: one compilation per test
SEEDS = st.integers(0, 2**32 - 1)
DIRECTIONS = {"forward": dict(reverse=False), "reverse, keep_order=True": dict(reverse=True, keep_order=True),
              "reverse, keep_order=False": dict(reverse=True, keep_order=False)}
CELLS = [("linen", "LSTMCell"), ("linen", "OptimizedLSTMCell"), ("linen", "GRUCell"),
         ("nnx", "LSTMCell"), ("nnx", "OptimizedLSTMCell"), ("nnx", "GRUCell")]


@st.composite
def padded_cases(draw, cell):
    """Fixed-shape cases with initial state and lengths, at least one row shorter than T
    (GRU without hidden bias: the nnx GRUCell cannot hold b_hn; linen gets it too, harmlessly)."""
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B).filter(lambda v: min(v) < T))
    return Case(cell=cell, steps=T, batch=B, input_size=I, hidden_size=H, lengths=tuple(lengths),
                hidden_bias=cell == "lstm", seed=draw(SEEDS))


def call(api, cell_name, w, x, h0, c0, **knobs):
    if api == "linen":
        require("flax.linen")
        from conformance.adapters.flax.linen import rnn_call
        return rnn_call(cell_name, w, x, h0, c0, **knobs)
    require("flax.nnx")
    from conformance.adapters.flax.nnx import nnx_rnn_call
    return nnx_rnn_call(cell_name, w, x, h0, c0, **knobs)


def flip_index(lengths):
    """flax's flip index (T, B): (T-1-t + lengths[b]) mod T, its own inverse."""
    return (np.arange(T - 1, -1, -1)[:, None] + np.asarray(lengths)[None, :]) % T


def flax_model(w, x, h0, c0, lengths, reverse=False, keep_order=False):
    """What flax's nn.RNN computes with seq_lengths (float64 reference building blocks)."""
    from conformance.adapters.flax.linen import flip_within_lengths

    xin = flip_within_lengths(x, lengths) if reverse else x
    y = reference.run(w, xin, h0, c0, padding="compute").y
    if reverse and keep_order:
        y = np.take_along_axis(y, flip_index(lengths)[:, :, None], axis=0)
    final = reference.run(w, xin, h0, c0, lengths=lengths)
    return y, final.h_n[0], None if final.c_n is None else final.c_n[0]


def repro(api, cell_name, case, knobs):
    return "\n".join([
        "import numpy as np, reference",
        "from conformance.core.adapter_strategies import rounded",
        "from conformance.core.strategies import Case",
        f"from conformance.adapters.flax.{'linen import rnn_call' if api == 'linen' else 'nnx import nnx_rnn_call as rnn_call'}",
        f"case = {case.short()}",
        "stack, x, h0, c0 = rounded(case); w = stack[0][0]; L = np.array(case.lengths)",
        f"h, c, y = rnn_call({cell_name!r}, w, x, h0[0], None if c0 is None else c0[0], seq_lengths=L, "
        f"return_carry=True, **{knobs!r})",
        "valid = reference.lengths_to_valid(L, case.steps)",
        "for pol in reference.POLICIES:",
        f"    want = reference.run(w, x, h0, c0, lengths=L, padding=pol, reverse={knobs['reverse']})",
        "    print(pol, 'padded y', np.abs(y - want.y)[~valid].max(), 'h_n', np.abs(h - want.h_n[0]).max())",
    ])


def record_base(api, cell_name, feature):
    return dict(adapter=f"flax.{api}.RNN({cell_name})", framework=f"flax.{api}",
                framework_version=installed_version("flax"), device="cpu", feature=feature)


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("api, cell_name", CELLS, ids=[f"{a}.{c}" for a, c in CELLS])
def test_seq_lengths_padded_steps(api, cell_name, direction, conformance_record):
    knobs = DIRECTIONS[direction]
    rec = record_base(api, cell_name, f"seq_lengths: padded steps ({direction})")
    worst = {}
    policy_errs = {p: 0.0 for p in reference.POLICIES}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=padded_cases("gru" if cell_name == "GRUCell" else "lstm"))
    def check(case):
        stack, x, h0, c0 = rounded(case)
        w, L = stack[0][0], np.asarray(case.lengths)
        snippet = repro(api, cell_name, case, knobs)
        rec.update(seed=case.seed, repro=snippet)
        h, c, y = call(api, cell_name, w, x, h0[0], None if c0 is None else c0[0], seq_lengths=L,
                       return_carry=True, **knobs)
        my, mh, mc = flax_model(w, x, h0, c0, L, **knobs)
        err = max(np.abs(y - my).max(), np.abs(h - mh).max(), 0.0 if c is None else np.abs(c - mc).max())
        tol = tolerance("float32", *case_shape(stack, T))
        if not worst or err / tol > worst["err"] / worst["tol"]:
            worst.update(err=float(err), tol=tol, seed=case.seed)
        valid = reference.lengths_to_valid(L, T)
        y_at = y if knobs.get("keep_order", True) else np.take_along_axis(y, flip_index(L)[:, :, None], axis=0)
        for pol in reference.POLICIES:  # evidence: how far each reference policy is from flax
            want = reference.run(w, x, h0, c0, lengths=L, padding=pol, reverse=knobs["reverse"])
            e = max(np.abs(y_at - want.y)[~valid].max(), np.abs(h - want.h_n[0]).max())
            policy_errs[pol] = max(policy_errs[pol], float(e))
        assert err <= tol, (f"flax.{api}.RNN({cell_name}) with seq_lengths ({direction}) no longer follows the "
                            f"recorded model (compute through padding, carry at the last valid step): {err:.3g} > "
                            f"{tol:.3g}\nseed={case.seed}, case={case.short()}\nrepro:\n{snippet}")

    try:
        check()
    finally:
        if worst:
            rec.update(max_abs_err=worst["err"], tolerance=worst["tol"], seed=worst["seed"])
        matching = [p for p, e in policy_errs.items() if worst and e <= worst["tol"]]
        rec["reason"] = (
            "documented (nn.RNN: padded outputs are not zeroed): no reference padding policy matches (so the "
            "adapter does not declare 'lengths'); "
            "valid outputs and the carry (state at each row's last valid step) equal the reference, "
            "outputs at padded steps are computed through the padding"
            + (" of the within-length-flipped input" if knobs["reverse"] else "")
            + (", returned in processing order (compared here after flipping back)"
               if knobs.get("keep_order") is False else "")
            + ". Max error of each policy (padded y or carry): "
            + ", ".join(f"{p} {e:.2g}" for p, e in policy_errs.items())
            + f"; matching: {matching or 'none'}")
        conformance_record(**rec)
    assert not [p for p, e in policy_errs.items() if e <= worst["tol"]], rec["reason"]


@pytest.mark.parametrize("api", ["linen", "nnx"])
def test_return_carry(api, conformance_record):
    """return_carry=False: the outputs alone; True, no seq_lengths: the state after step T."""
    case = Case(steps=T, batch=B, input_size=I, hidden_size=H, seed=20260505)
    stack, x, h0, c0 = rounded(case)
    w = stack[0][0]
    rec = record_base(api, "LSTMCell", "return_carry")
    rec.update(seed=case.seed, repro=f"case = {case.short()}; rnn_call('LSTMCell', w, x, h0[0], c0[0], "
                                     "return_carry=True/False)  # conformance.adapters.flax.linen / flax_nnx")
    h_none, _, y_only = call(api, "LSTMCell", w, x, h0[0], c0[0], return_carry=False)
    h, c, y = call(api, "LSTMCell", w, x, h0[0], c0[0], return_carry=True)
    want = reference.run(w, x, h0, c0)
    err = max(np.abs(y - want.y).max(), np.abs(h - want.h_n[0]).max(), np.abs(c - want.c_n[0]).max(),
              np.abs(y_only - want.y).max())
    tol = tolerance("float32", *case_shape(stack, T))
    rec.update(max_abs_err=float(err), tolerance=tol,
               reason="return_carry=False returns y only; True returns ((c, h), y) with the state after step T")
    conformance_record(**rec)
    assert y_only.shape == (T, B, H) and h_none is None
    assert err <= tol, f"{rec['reason']}: error {err:.3g} > {tol:.3g}\nrepro:\n{rec['repro']}"


def test_nnx_gru_has_no_hidden_bias(conformance_record):
    """nnx.GRUCell: dense_h is built without a bias, so n = tanh(W_n x + b_in + r * (R_n h)).
    With b_hn = 0 it equals the reference (exactly expressible); with b_hn != 0 the canonical
    weights cannot be expressed (to_nnx_gru raises) and dropping b_hn changes the outputs."""
    require("flax.nnx")
    from flax import nnx

    from conformance.adapters.flax.nnx import nnx_rnn_call

    case = Case(cell="gru", steps=T, batch=B, input_size=I, hidden_size=H, seed=20260506)
    stack, x, h0, _ = rounded(case)
    w = stack[0][0]
    tol = tolerance("float32", *case_shape(stack, T))
    params = nnx.to_pure_dict(nnx.state(nnx.GRUCell(I, H, rngs=nnx.Rngs(0)), nnx.Param))
    no_bn = reference.GRUWeights(W=w.W, R=w.R, b_x=w.b_x, b_h=np.concatenate([w.b_h[:2 * H], np.zeros(H)]))
    _, _, y0 = nnx_rnn_call("GRUCell", no_bn, x, h0[0])
    err_zero = float(np.abs(y0 - reference.run(no_bn, x, h0).y).max())
    with pytest.raises(ValueError, match="no recurrent bias"):
        reference.layouts.to_nnx_gru(w)
    err_dropped = float(np.abs(y0 - reference.run(w, x, h0).y).max())
    doc_claims = "b_{hn}" in (nnx.GRUCell.__doc__ or "")
    rec = record_base("nnx", "GRUCell", "GRU hidden-side bias b_hn")
    rec.update(seed=case.seed, max_abs_err=err_zero, tolerance=tol,
               repro=("from flax import nnx; print(nnx.to_pure_dict(nnx.state(nnx.GRUCell(3, 4, "
                      "rngs=nnx.Rngs(0)), nnx.Param))['dense_h'].keys())  # kernel only"),
               finding="flax-nnx-gru-cell-no-hidden-bias",
               reason=(f"finding: nnx.GRUCell has no hidden-side bias (dense_h params: {sorted(params['dense_h'])}); "
                       f"its docstring {'shows' if doc_claims else 'does not show'} b_hn. b_hn = 0: parity "
                       f"(error {err_zero:.2g}); a canonical b_hn != 0 cannot be expressed (it sits inside "
                       f"r * (R_n h + b_hn)); dropping it changes y by {err_dropped:.2g}. linen.GRUCell has it."))
    conformance_record(**rec)
    assert "bias" not in params["dense_h"], "nnx.GRUCell now has a hidden-side bias: update the layout and registry"
    assert err_zero <= tol, rec["reason"]
    assert err_dropped > 100 * tol, rec["reason"]


# ------------------------------------------------------------------ dropout the flax way

RATE_IN, RATE_REC = 0.3, 0.4


def recovered_masks(x, h0, y, xd, hd):
    """Scaled masks (T, B, N) read back from the dropped inputs: kept where nonzero."""
    h_prev = np.concatenate([h0[None], y[:-1]])
    m_in = np.where(xd != 0, 1 / (1 - RATE_IN), 0.0)
    m_rec = np.where(hd != 0, 1 / (1 - RATE_REC), 0.0)
    assert np.all(x != 0) and np.all(h_prev != 0), "an exact zero input hides its mask element"
    return m_in, m_rec


@pytest.mark.parametrize("per_step", [False, True], ids=["split_rngs=False", "split_rngs=True"])
def test_dropout_in_custom_cell(per_step, conformance_record):
    """nn.Dropout on x_t and on h_{t-1} inside a custom LSTM cell under nn.RNN: the masks'
    time structure follows split_rngs, and the layer equals the reference under the masks."""
    require("flax.linen")
    from conformance.adapters.flax.linen import dropout_rnn_call

    rec = record_base("linen", "DropoutLSTMCell", f"dropout in a custom cell, split_rngs dropout={per_step}")
    counts = {"in": [0, 0], "rec": [0, 0]}
    worst = {}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=SEEDS)
    def check(seed):
        case = Case(steps=T, batch=B, input_size=I, hidden_size=H, seed=seed)
        stack, x, h0, c0 = rounded(case)
        w = stack[0][0]
        snippet = ("from conformance.adapters.flax.linen import dropout_rnn_call\n"
                   "from conformance.core.adapter_strategies import rounded\nfrom conformance.core.strategies import Case\n"
                   f"stack, x, h0, c0 = rounded({case.short()})\n"
                   f"y, h, c, xd, hd = dropout_rnn_call(stack[0][0], x, h0[0], c0[0], {RATE_IN}, {RATE_REC}, "
                   f"{per_step}, {seed})\nprint((xd != 0)[:, 0], (hd != 0)[:, 0])")
        rec.update(seed=seed, repro=snippet)
        y, h, c, xd, hd = dropout_rnn_call(w, x, h0[0], c0[0], RATE_IN, RATE_REC, per_step, seed)
        m_in, m_rec = recovered_masks(x, h0[0], y, xd, hd)
        same = [bool(np.all(m[1:] == m[:1])) for m in (m_in, m_rec)]
        assert same == [not per_step] * 2, (
            f"split_rngs dropout={per_step}: masks constant over time {same} (input, recurrent)\n"
            f"seed={seed}\nrepro:\n{snippet}")
        masks = reference.LayerMasks(input=reference.Mask(m_in, "step"), recurrent=reference.Mask(m_rec, "step"))
        want = reference.run(w, x, h0, c0, masks=masks)
        err = max(np.abs(y - want.y).max(), np.abs(h - want.h_n[0]).max(), np.abs(c - want.c_n[0]).max())
        tol = tolerance("float32", *case_shape(stack, T))
        if not worst or err / tol > worst["err"] / worst["tol"]:
            worst.update(err=float(err), tol=tol, seed=seed)
        for key, m in (("in", m_in), ("rec", m_rec)):
            drawn = m if per_step else m[:1]  # per-sequence: one draw, repeated
            counts[key][0] += int((drawn == 0).sum())
            counts[key][1] += drawn.size
        assert err <= tol, (f"flax dropout cell differs from the reference under its own masks: {err:.3g} > "
                            f"{tol:.3g}\nseed={seed}\nrepro:\n{snippet}")

    check()
    rates = [rate_test(*counts["in"], RATE_IN, "input drop rate"), rate_test(*counts["rec"], RATE_REC, "recurrent")]
    rec.update(max_abs_err=worst["err"], tolerance=worst["tol"], seed=worst["seed"],
               reason=(f"masks {'fresh per step' if per_step else 'fixed per sequence (variational)'}, one per "
                       "batch row and unit, shared by all gates, values {0, 1/(1-p)}; parity under the recovered "
                       "masks; " + "; ".join(c.detail for c in rates)))
    conformance_record(**rec)
    assert all(c.p_value > ALPHA for c in rates), rec["reason"]


DEFAULT_SPLIT_SNIPPET = """import jax, jax.numpy as jnp, flax.linen as nn
from conformance.adapters.flax.linen import dropout_cell
rnn = nn.RNN(dropout_cell("LSTMCell")(features=4, rate_x=0.5), time_major=True)  # nn.RNN's default split_rngs
x = jnp.ones((5, 2, 3))
variables = rnn.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)
print(rnn.apply(variables, x, rngs={"dropout": jax.random.key(2)}).shape)
# standalone: python findings/flax-rnn-default-split-rngs-drops-dropout-stream.py"""


def test_dropout_with_default_split_rngs(conformance_record):
    """nn.Dropout inside a custom cell (`dropout_cell`, the one the dropout fingerprints use) under
    nn.RNN with its DEFAULT split_rngs ({'params': False}), ``rngs={'dropout': key}`` given at init
    and apply, as the flax dropout guide passes them: the docstring says split_rngs decides whether
    a stream's key is split per step or replicated, so the layer must run (with either mask
    structure)."""
    require("flax.linen")
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    from conformance.adapters.flax.linen import dropout_cell

    rec = record_base("linen", "DropoutLSTMCell", "dropout in a custom cell, nn.RNN's default split_rngs")
    rec.update(repro=DEFAULT_SPLIT_SNIPPET)
    rnn = nn.RNN(dropout_cell("LSTMCell")(features=4, rate_x=0.5), time_major=True)
    x = jnp.ones((5, 2, 3))
    try:
        variables = rnn.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)
        got, ok = f"ran: y {tuple(rnn.apply(variables, x, rngs={'dropout': jax.random.key(2)}).shape)}", True
    except Exception as e:  # the flax error is the observation
        got, ok = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}", False
    rec.update(reason=got)
    conformance_record(**rec)
    assert ok, (f"nn.RNN(cell with nn.Dropout), default split_rngs, rngs={{'dropout': key}}: {got}\n"
                f"repro:\n{DEFAULT_SPLIT_SNIPPET}")
