"""Keras dropout, deterministically: ``LSTM`` / ``GRU`` (and ``RNN(LSTMCell | GRUCell)``) with
``dropout`` / ``recurrent_dropout`` set, their masks injected through the cell's mask hooks
(Keras 3 ``get_dropout_mask`` / ``get_recurrent_dropout_mask``, keras/src/layers/rnn/
dropout_rnn_cell.py; tf-keras ``get_dropout_mask_for_cell`` / ``get_recurrent_dropout_mask_for_cell``),
run in training mode, against ``reference.run_vjp`` under the same masks: outputs, final
states and gradients w.r.t. x, h0, c0 and every weight.

Keras' mask structure (SEMANTICS.md; established by suites/test_fingerprints.py): masks are
per sequence (B, F), the recurrent mask multiplies h_{t-1} inside the recurrent matmul only;
with ``implementation=1`` (forced by ``recurrent_dropout > 0``) one mask per gate, else one
input mask shared by all gates. The injected masks have exactly that structure (a list per
gate, or one), drawn by the reference sampler (`keras_strategies.inject_masks`).

Three tests, so that a deviation is one node id (expectations/keras.toml):
- ``test_injected_masks``: hypothesis draws the cell, layer kind (LSTM/GRU or RNN(cell)),
  ``implementation``, ``use_cudnn`` ("auto" | False: the fused torch / JAX loops vs the
  generic step loop), rates among 0, tiny, 0.5, near 1 for each knob, stacked / bidirectional /
  initial state, GRU reset_after both ways. The one configuration that crashes
  (``test_per_gate_fast_path``) is drawn with ``use_cudnn=False`` here; Bidirectional layers
  without recurrent_dropout with implementation=2 (``test_bidirectional_implementation``).
- ``test_per_gate_fast_path``: ``LSTM/GRU(implementation=1, dropout=p)`` with
  ``recurrent_dropout=0`` and ``use_cudnn="auto"``: the layer's fast path asks the cell for its
  input mask and gets a list of one mask per gate (keras lstm.py / gru.py ``inner_loop``).
- ``test_rate_one``: a rate of exactly 1 drops everything (documented: "fraction of the units
  to drop"; the reference draws zeros).
- ``test_bidirectional_implementation``: ``Bidirectional`` keeps ``implementation=1``.
- ``test_tf_keras_injected_masks`` / ``test_tf_keras_per_gate_fast_path`` (marked ``tf_keras``):
  the same properties on tf-keras 2 (its hooks: ``get_dropout_mask_for_cell(inputs, training,
  count)``, always a list of `count` masks).

Tolerance: ``tolerance(...)`` times the mask scale 1/(1-p) (as suites/test_torch_dropout.py),
x2 for gradients.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from conformance.adapters.keras import strategies as KS
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, cotangents, rounded
from conformance.core.frameworks import require
from conformance.checks.parity import grad_errors, max_abs_errors
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

EXAMPLES = max(4, settings.default.max_examples // 4)
RATES = (0.0, 1e-3, 0.5, 0.9, 0.999)  # exactly 1: test_rate_one
GATES = {"lstm": 4, "gru": 3}
NAMES = {"layer": "{fw}.layers.{C}", "rnn": "{fw}.layers.RNN({C}Cell)"}


def per_gate(rates, implementation):
    """Does the cell use one mask per gate? keras lstm.py/gru.py: recurrent_dropout > 0 forces
    implementation 1, and implementation 1 applies one mask per gate."""
    return bool(rates.get("recurrent_dropout")) or implementation == 1


def fast_path_per_gate(layer, rates, implementation, use_cudnn):
    """The configuration of test_per_gate_fast_path: implementation=1 input dropout on the
    layer's fused path (Keras 3 use_cudnn="auto"; tf-keras: None, it has no such argument)."""
    return (layer == "layer" and use_cudnn in ("auto", None) and implementation == 1
            and rates.get("dropout", 0) > 0 and not rates.get("recurrent_dropout"))


def options(layer, implementation, use_cudnn):
    opts = dict(layer=layer, implementation=implementation)
    if layer == "layer" and use_cudnn is not None:  # None: tf-keras (no such argument)
        opts["use_cudnn"] = use_cudnn
    return opts


@st.composite
def dropout_cases(draw, cell, layer, tf_keras=False):
    rates = {"dropout": draw(st.sampled_from(RATES)), "recurrent_dropout": draw(st.sampled_from(RATES))}
    if not any(rates.values()):
        rates["dropout"] = 0.5
    case = Case(cell=cell, steps=draw(st.integers(1, 5)), batch=draw(st.integers(1, 3)),
                input_size=draw(st.integers(1, 4)), hidden_size=draw(st.integers(1, 4)),
                num_layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()),
                initial_state=draw(st.booleans()),
                reset_after=draw(st.booleans()) if cell == "gru" else True, seed=draw(st.integers(0, 2**31 - 1)))
    implementation = draw(st.sampled_from([1, 2]))
    if case.bidirectional and not rates["recurrent_dropout"] and not tf_keras:
        implementation = 2  # Keras 3's Bidirectional drops implementation=1: test_bidirectional_implementation
    use_cudnn = None if tf_keras else draw(st.sampled_from(["auto", False]))
    if fast_path_per_gate(layer, rates, implementation, use_cudnn):  # covered by test_*per_gate_fast_path
        use_cudnn, implementation = (None, 2) if tf_keras else (False, implementation)
    return case, rates, options(layer, implementation, use_cudnn)


def repro(framework, case, rates, opts, gates):
    env = "TF_USE_LEGACY_KERAS=1" if framework == "tf_keras" else "KERAS_BACKEND=<backend>"
    return "\n".join([
        f"# {env} python",
        "import numpy as np, reference",
        "from conformance.adapters import registry", "from conformance.adapters.keras import strategies as KS",
        "from conformance.core.adapter_strategies import rounded",
        "from conformance.core.strategies import Case",
        f"case = {case.short()}",
        "stack, x, h0, c0 = rounded(case)",
        f"a = registry.load(KS.variant({case.cell!r}, framework={framework!r}, **{opts!r}))",
        f"rates = {rates!r}",
        f"inject, masks = KS.inject_masks(stack, case.batch, rates, case.seed + 1, {gates})",
        "layers = a.build(stack, case.steps, dropout={**rates, 'seed': 0})",
        "got = a.run(stack, x, h0, c0, training=True, inject=inject, layers=layers)[0]",
        "want = reference.run(stack, x, h0, c0, masks=masks)",
        "print(np.abs(got.y - want.y).max())",
    ])


def compare(adapter, case, rates, gates):
    """{quantity: error / tolerance} of the layer under injected masks vs the reference."""
    stack, x, h0, c0 = rounded(case)
    inject, masks = KS.inject_masks(stack, case.batch, rates, case.seed + 1, gates)
    dy, dh, dc = cotangents(case, stack)
    layers = adapter.build(stack, case.steps, dropout={**rates, "seed": 0})
    got, gg = adapter.run(stack, x, h0, c0, training=True, inject=inject, layers=layers, cotangents=(dy, dh, dc))
    want, wg = reference.run_vjp(stack, x, dy, dh, dc, h0, c0, masks=masks)
    steps, fan_in = case_shape(stack, case.steps)
    scale = max([1.0] + [1.0 / (1.0 - p) for p in rates.values() if p < 1])
    tol = scale * tolerance("float32", steps, fan_in)
    ratios = {k: v / tol for k, v in max_abs_errors(got, want).items()}
    ratios.update({k: e / (2 * scale * tolerance("float32", steps, fan_in, magnitude=m))
                   for k, (e, m) in grad_errors(gg, wg).items()})
    return ratios, tol


def check(framework, case, rates, opts, worst):
    """Run one case, update `worst` (for the record), assert every ratio <= 1."""
    gates = GATES[case.cell] if per_gate(rates, opts["implementation"]) else 1
    adapter = registry.load(KS.variant(case.cell, framework=framework, **opts))
    worst["backend"] = adapter.backend
    rp = repro(framework, case, rates, opts, gates)
    worst.setdefault("repro", rp)
    where = (f"{adapter.info.name} ({adapter.backend}) under injected masks {rates} (per-gate={gates > 1})")
    try:
        ratios, tol = compare(adapter, case, rates, gates)
    except Exception as e:
        worst.update(seed=case.seed, repro=rp, crash=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
        raise AssertionError(f"{where} crashed: {worst['crash']}\nseed={case.seed}, case={case.short()}\n"
                             f"repro:\n{rp}") from e
    k = max(ratios, key=ratios.get)
    if ratios[k] > worst.get("ratio", -1.0):
        worst.update(ratio=ratios[k], err=ratios[k] * tol, tol=tol, seed=case.seed, repro=rp)
    bad = {n: r for n, r in ratios.items() if r > 1}
    assert not bad, (f"{where} differs from the reference: "
                     + ", ".join(f"{n} {r:.3g}x" for n, r in sorted(bad.items(), key=lambda kv: -kv[1])[:6])
                     + f" of its tolerance\nseed={case.seed}, case={case.short()}\nrepro:\n{rp}")


def record(conformance_record, worst, name, feature, framework="keras", n=None):
    why = worst.get("crash") and f"crash: {worst['crash']}"
    if why is None and "ratio" in worst:
        why = f"worst ratio {worst['ratio']:.3g}" + (f" over {n} draws" if n else "")
    KS.record(conformance_record, adapter=name, backend=worst.get("backend"), feature=feature,
              framework=framework, distribution="keras" if framework == "keras" else "tf-keras",
              err=worst.get("err"), tol=worst.get("tol"), seed=worst.get("seed"), repro=worst.get("repro"),
              reason=why)


def run_hypothesis(framework, cell, layer, conformance_record):
    worst = {}
    name = NAMES[layer].format(fw=framework, C=cell.upper())

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(dropout_cases(cell, layer, tf_keras=framework == "tf_keras"))
    def prop(drawn):
        check(framework, *drawn, worst)

    try:
        prop()
    finally:
        record(conformance_record, worst, name, "dropout parity (injected masks)", framework, EXAMPLES)


@pytest.mark.keras
@pytest.mark.framework("keras")
@pytest.mark.parametrize("layer", ["layer", "rnn"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_injected_masks(cell, layer, conformance_record):
    require("keras")
    run_hypothesis("keras", cell, layer, conformance_record)


FIXED = dict(steps=4, batch=3, input_size=3, hidden_size=2, initial_state=True, seed=7)


def per_gate_fast_path(framework, cell, conformance_record):
    """LSTM/GRU(implementation=1, dropout=0.5) in training mode (Keras 3 use_cudnn="auto"):
    runs, and equals the reference under one injected input mask per gate (what its cell
    applies with implementation=1)."""
    worst = {}
    try:
        check(framework, Case(cell=cell, **FIXED), {"dropout": 0.5},
              options("layer", 1, "auto" if framework == "keras" else None), worst)
    finally:
        record(conformance_record, worst, f"{framework}.layers.{cell.upper()}",
               "dropout parity: implementation=1 fast path (per-gate input masks)", framework)


@pytest.mark.keras
@pytest.mark.framework("keras")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_per_gate_fast_path(cell, conformance_record):
    require("keras")
    per_gate_fast_path("keras", cell, conformance_record)


@pytest.mark.tf_keras
@pytest.mark.framework("tf_keras")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tf_keras_per_gate_fast_path(cell, conformance_record):
    require("tf_keras", "tf-keras")
    per_gate_fast_path("tf_keras", cell, conformance_record)


@pytest.mark.keras
@pytest.mark.framework("keras")
@pytest.mark.parametrize("knob", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("layer", ["layer", "rnn"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rate_one(cell, layer, knob, conformance_record):
    """A rate of exactly 1 drops every element (the reference's masks are zeros)."""
    require("keras")
    worst = {}
    try:
        check("keras", Case(cell=cell, **FIXED), {knob: 1.0}, options(layer, 2, "auto"), worst)
    finally:
        record(conformance_record, worst, NAMES[layer].format(fw="keras", C=cell.upper()),
               f"dropout parity: {knob}=1 drops everything")


@pytest.mark.keras
@pytest.mark.framework("keras")
@pytest.mark.parametrize("layer", ["layer", "rnn"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_implementation(cell, layer, conformance_record):
    """``Bidirectional`` rebuilds its layers from ``get_config``: both directions must keep
    ``implementation=1`` (with dropout, the difference between one input mask per gate and one
    shared by all gates)."""
    keras = require("keras")
    C = cell.upper()
    inner = (getattr(keras.layers, C)(2, implementation=1, dropout=0.5) if layer == "layer"
             else keras.layers.RNN(getattr(keras.layers, f"{C}Cell")(2, implementation=1, dropout=0.5)))
    wrapped = keras.layers.Bidirectional(inner)
    got = {d: getattr(wrapped, f"{d}_layer").cell for d in ("forward", "backward")}
    seen = {d: (c.implementation, getattr(c, "dropout_mask_count", None)) for d, c in got.items()}
    rp = (f"import keras; b = keras.layers.Bidirectional({type(inner).__name__}(...implementation=1, dropout=0.5)); "
          "print(b.forward_layer.cell.implementation, b.backward_layer.cell.implementation)")
    KS.record(conformance_record, adapter=NAMES[layer].format(fw="keras", C=C), backend=keras.backend.backend(),
              feature="Bidirectional keeps implementation=1 (per-gate dropout masks)", repro=rp,
              reason=f"(implementation, dropout_mask_count) per direction: {seen}")
    want = (inner.cell.implementation, getattr(inner.cell, "dropout_mask_count", None))
    assert all(v == want for v in seen.values()), (
        f"Bidirectional({NAMES[layer].format(fw='keras', C=C)}(implementation=1, dropout=0.5)): the wrapped "
        f"layer has (implementation, dropout_mask_count) {want}, the directions {seen}\nrepro: {rp}")


@pytest.mark.tf_keras
@pytest.mark.framework("tf_keras")
@pytest.mark.parametrize("layer", ["layer", "rnn"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tf_keras_injected_masks(cell, layer, conformance_record):
    require("tf_keras", "tf-keras")
    run_hypothesis("tf_keras", cell, layer, conformance_record)
