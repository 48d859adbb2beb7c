"""Keras 3 dropout layers around a recurrent layer, deterministically (every backend).

Identities (DESIGN.md "Deterministic conformance"; SEMANTICS.md Keras 3):
- ``SpatialDropout1D(p)`` and ``Dropout(p, noise_shape=(None, 1, F))`` draw one (B, F) mask
  per sequence (constant over time), values exactly 0 or 1/(1-p);
- ``SpatialDropout1D(p)`` then ``LSTM(dropout=0)`` equals ``LSTM(dropout=p)`` under the same
  (B, F) mask: the mask SpatialDropout1D actually drew (recovered as output / input) is
  injected through the cell's ``get_dropout_mask`` hook, and both equal the reference with
  that input mask; the LSTM's own mask (observed through the hook, not replaced) has the same
  structure and its outputs equal the reference under it;
- ``Dropout(p)`` and ``TimeDistributed(Dropout(p))`` draw a fresh mask every step and element;
  ``Dropout(p)`` then ``LSTM`` equals the reference with that per-step input mask.

Masks are recovered exactly from the output / input ratio of an input with no zeros
(|x| >= 0.5). Time structure is measured on (B, T, F) = (8, 32, 6) with p = 0.5 and a fixed
seed: a per-step mask leaves a (b, f) lane constant over all 32 steps with probability 2^-31,
so "no lane constant" (per step) vs "every lane constant" (per sequence) is decided with a
false-alarm probability below 1e-7 over the 48 lanes.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from conformance.adapters.keras import strategies as KS
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape
from conformance.core.frameworks import require
from conformance.checks.parity import max_abs_errors
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

pytestmark = [pytest.mark.keras, pytest.mark.framework("keras")]
P, SEED = 0.5, 1234
B, T, F = 8, 32, 6  # structure measurements
VALUE_TOL = 1e-6  # relative: out / x in float32 is the mask value to a few ulps
SOURCES = {  # name -> constructor source (`keras`, `F` in scope): built by eval, quoted in repros
    "SpatialDropout1D": f"keras.layers.SpatialDropout1D({P}, seed={SEED})",
    "Dropout(noise_shape=(None, 1, F))": f"keras.layers.Dropout({P}, noise_shape=(None, 1, F), seed={SEED})",
    "Dropout": f"keras.layers.Dropout({P}, seed={SEED})",
    "TimeDistributed(Dropout)": f"keras.layers.TimeDistributed(keras.layers.Dropout({P}, seed={SEED}))",
}


def wrapper(keras, name, features):
    return eval(SOURCES[name], {"keras": keras, "F": features})  # noqa: S307 -- our own constant source
PER_SEQUENCE = ("SpatialDropout1D", "Dropout(noise_shape=(None, 1, F))")
PER_STEP = ("Dropout", "TimeDistributed(Dropout)")


def signal(seed, shape):
    """float32 values with |x| >= 0.5 (so that out / x recovers the mask), random signs."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return x.astype(np.float32)


def recover(keras, layer, x):
    """(mask values out / x, largest relative distance from {0, 1/(1-P)}) of `layer` on x."""
    out = keras.ops.convert_to_numpy(layer(x, training=True)).astype(np.float64)
    m = out / x.astype(np.float64)
    scale = 1.0 / (1.0 - P)
    err = float(np.max(np.minimum(np.abs(m), np.abs(m - scale)))) / scale
    return np.where(np.abs(m) < scale / 2, 0.0, scale), err


def constant_lanes(m):
    """Fraction of (b, f) lanes of a (B, T, F) mask that are the same at every step."""
    return float(np.mean(np.all(m == m[:, :1], axis=1)))


def structure_repro(name):
    return "\n".join([
        "# KERAS_BACKEND=<backend> python", "import numpy as np, keras",
        f"rng, shape = np.random.default_rng({SEED}), ({B}, {T}, {F})",
        "x = (rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)).astype('float32')",
        f"F = {F}; layer = {SOURCES[name]}",
        "m = keras.ops.convert_to_numpy(layer(x, training=True)) / x",
        "print(np.mean(np.all(m == m[:, :1], axis=1)))  # fraction of lanes constant over time",
    ])


@pytest.mark.parametrize("name", PER_SEQUENCE + PER_STEP)
def test_mask_time_structure(name, conformance_record):
    """Per-sequence wrappers: every lane constant over time; per-step ones: none."""
    keras = require("keras")
    x = signal(SEED, (B, T, F))
    m, err = recover(keras, wrapper(keras, name, F), x)
    frac = constant_lanes(m)
    kept = float(np.mean(m > 0))
    want = 1.0 if name in PER_SEQUENCE else 0.0
    rp = structure_repro(name)
    KS.record(conformance_record, adapter=f"keras.layers.{name}", backend=keras.backend.backend(),
              feature="mask time structure (" + ("per sequence" if want else "per step") + ")", err=err,
              tol=VALUE_TOL, seed=SEED, repro=rp,
              reason=f"lanes constant over {T} steps: {frac:.3g}; kept fraction {kept:.3g}")
    assert err <= VALUE_TOL, (f"{name}: out / x is not 0 or 1/(1-p) (relative distance {err:.3g})\n"
                              f"seed={SEED}\nrepro:\n{rp}")
    assert frac == want, (f"{name} (rate {P}): fraction of (b, f) lanes constant over {T} steps is {frac:.3g}, "
                          f"expected {want} ({'per sequence' if want else 'fresh every step'})\n"
                          f"seed={SEED}\nrepro:\n{rp}")


def test_noise_shape_dropout_equals_spatial_dropout(conformance_record):
    """Same seed, same rate: Dropout(noise_shape=(None, 1, F)) and SpatialDropout1D draw the
    same (B, 1, F) mask shape; both are per sequence (test_mask_time_structure) -- here the
    masks themselves are compared: the same seed gives the same mask iff both ask the backend
    for the same noise shape with the same seed stream."""
    keras = require("keras")
    x = signal(SEED, (B, T, F))
    a, _ = recover(keras, wrapper(keras, "SpatialDropout1D", F), x)
    b, _ = recover(keras, wrapper(keras, "Dropout(noise_shape=(None, 1, F))", F), x)
    differ = float(np.mean(a != b))
    rp = structure_repro("SpatialDropout1D") + f"\n# and again with layer = {SOURCES['Dropout(noise_shape=(None, 1, F))']}"
    KS.record(conformance_record, adapter="keras.layers.Dropout(noise_shape=(None, 1, F))",
              backend=keras.backend.backend(), feature="same mask as SpatialDropout1D (same seed)", seed=SEED,
              repro=rp, reason=f"fraction of mask elements that differ: {differ:.3g}")
    assert differ == 0.0, (f"Dropout(noise_shape=(None, 1, F), seed={SEED}) and SpatialDropout1D(seed={SEED}) "
                           f"drew different masks ({differ:.3g} of elements differ)\nseed={SEED}\nrepro:\n{rp}")


# ---------------------------------------------------------------- with the recurrent layer

def small_case(cell):
    return KS.nonzero_case(Case(cell=cell, steps=5, batch=3, input_size=4, hidden_size=3, initial_state=True,
                                seed=SEED))


def spy(cell, seen):
    """Record what the cell's get_dropout_mask returns (Keras' own mask), changing nothing."""
    original = cell.get_dropout_mask

    def observed(step_input):
        m = original(step_input)
        if m is not None:
            seen.append(m)
        return m
    cell.get_dropout_mask = observed


def ratio(got, want, case, stack):
    steps, fan_in = case_shape(stack, case.steps)
    tol = tolerance("float32", steps, fan_in) / (1.0 - P)
    errs = max_abs_errors(got, want)
    return max(errs.values()) / tol, tol


def masks_of(values, time="sequence"):
    return reference.StackMasks(layers=[[reference.LayerMasks(input=reference.Mask(values, time=time))]])


def layer_repro(cell, name):
    return "\n".join([
        "# KERAS_BACKEND=<backend> python", "import numpy as np, keras, reference",
        "from conformance.adapters import registry", "from conformance.adapters.keras import strategies as KS",
        "from conformance.core.strategies import Case",
        f"case, stack, x, h0, c0 = KS.nonzero_case({small_case(cell)[0].short()})",
        f"F = {small_case(cell)[0].input_size}; layer = {SOURCES[name]}",
        "xd = keras.ops.convert_to_numpy(layer(np.swapaxes(x, 0, 1).astype('float32'), training=True))",
        "m = xd / np.swapaxes(x, 0, 1)  # the wrapper's mask, (B, T, F)",
        f"a = registry.load(KS.variant({cell!r}))",
        "got = a.run(stack, np.swapaxes(xd, 0, 1), h0, c0)[0]  # the layer with dropout=0",
        "step = reference.Mask(np.swapaxes(m, 0, 1), time='step')  # (T, B, F)",
        "want = reference.run(stack, x, h0, c0, masks=reference.StackMasks(layers=[[reference.LayerMasks(input=step)]]))",
        "print(np.abs(got.y - want.y).max())",
    ])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_spatial_dropout_then_layer_equals_layer_dropout(cell, conformance_record):
    keras = require("keras")
    case, stack, x, h0, c0 = small_case(cell)
    xb = np.ascontiguousarray(np.swapaxes(x, 0, 1)).astype(np.float32)  # (B, T, F)
    m, err = recover(keras, wrapper(keras, "SpatialDropout1D", case.input_size), xb)
    assert constant_lanes(m) == 1.0 and err <= VALUE_TOL, f"SpatialDropout1D mask not per sequence (seed={SEED})"
    mask = m[:, 0, :]  # (B, F)
    a = registry.load(KS.variant(cell))
    want = reference.run(stack, x, h0, c0, masks=masks_of(mask))
    # 1. SpatialDropout1D then the layer without dropout
    r1, tol = ratio(a.run(stack, np.swapaxes(xb * m, 0, 1), h0, c0)[0], want, case, stack)
    # 2. the layer with dropout=P, the same mask injected through its hook
    layers = a.build(stack, case.steps, dropout={"dropout": P, "seed": 0})
    r2, _ = ratio(a.run(stack, x, h0, c0, training=True, inject={(0, 0): {"dropout": mask}}, layers=layers)[0],
                  want, case, stack)
    # 3. the layer with dropout=P and its own mask, observed through the hook
    seen = []
    layers = a.build(stack, case.steps, dropout={"dropout": P, "seed": SEED})
    spy(layers[0].cell, seen)
    got = a.run(stack, x, h0, c0, training=True, layers=layers)[0]
    own = keras.ops.convert_to_numpy(seen[0]).astype(np.float64)
    r3, _ = ratio(got, reference.run(stack, x, h0, c0, masks=masks_of(own)), case, stack)
    own_ok = own.shape == mask.shape and set(np.unique(own)) <= {0.0, 1.0 / (1.0 - P)}
    rp = layer_repro(cell, "SpatialDropout1D")
    worst = max(r1, r2, r3)
    KS.record(conformance_record, adapter=f"keras.layers.SpatialDropout1D -> keras.layers.{cell.upper()}",
              backend=a.backend, feature="SpatialDropout1D(p) + layer == layer(dropout=p), same (B, F) mask",
              err=worst * tol, tol=tol, seed=SEED, repro=rp,
              reason=f"error/tol: spatial+layer {r1:.3g}, injected {r2:.3g}, own mask {r3:.3g}; "
                     f"own mask shape {own.shape}, values {sorted(set(np.unique(own).tolist()))}")
    assert own_ok, (f"{cell.upper()}(dropout={P}) drew a mask of shape {own.shape} with values "
                    f"{np.unique(own)}, not one (B, F) = {mask.shape} mask of 0 or 1/(1-p)\nseed={SEED}\nrepro:\n{rp}")
    assert worst <= 1, (f"{cell.upper()}: SpatialDropout1D({P}) + {cell.upper()}(dropout=0) vs "
                        f"{cell.upper()}(dropout={P}) under the same mask vs the reference, error/tolerance: "
                        f"spatial+layer {r1:.3g}, injected {r2:.3g}, own mask {r3:.3g}\nseed={SEED}\nrepro:\n{rp}")


@pytest.mark.parametrize("name", PER_STEP)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_per_step_dropout_then_layer(cell, name, conformance_record):
    """Dropout / TimeDistributed(Dropout) then the layer = the reference with a per-step input
    mask (time="step"): the one mask structure the layer's own ``dropout`` cannot express."""
    keras = require("keras")
    case, stack, x, h0, c0 = small_case(cell)
    xb = np.ascontiguousarray(np.swapaxes(x, 0, 1)).astype(np.float32)
    m, err = recover(keras, wrapper(keras, name, case.input_size), xb)
    a = registry.load(KS.variant(cell))
    got = a.run(stack, np.swapaxes(xb * m, 0, 1), h0, c0)[0]
    r, tol = ratio(got, reference.run(stack, x, h0, c0, masks=masks_of(np.swapaxes(m, 0, 1), "step")), case, stack)
    rp = layer_repro(cell, name)
    KS.record(conformance_record, adapter=f"keras.layers.{name} -> keras.layers.{cell.upper()}",
              backend=a.backend, feature="per-step input dropout before the layer", err=r * tol, tol=tol,
              seed=SEED, repro=rp, reason=f"error/tol {r:.3g}; mask value error {err:.3g}")
    assert err <= VALUE_TOL and r <= 1, (f"{name} + {cell.upper()}: error/tolerance {r:.3g} against the reference "
                                         f"with the per-step mask (mask value error {err:.3g})\n"
                                         f"seed={SEED}\nrepro:\n{rp}")


def test_time_distributed_undefined_steps(conformance_record):
    """TimeDistributed(Dropout) traced with an undefined time axis (a tf.function with input
    signature (None, None, F): serving, tf.data pipelines) takes the ``vectorized_map`` branch of
    keras/src/layers/rnn/time_distributed.py instead of the Python loop: it must still return
    every step, each with a fresh mask."""
    keras = require("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("only the TensorFlow backend traces a graph with an undefined time axis (tf.function)")
    import tensorflow as tf

    x = signal(SEED, (B, T, F))
    layer = wrapper(keras, "TimeDistributed(Dropout)", F)
    fn = tf.function(lambda t: layer(t, training=True), input_signature=[tf.TensorSpec((None, None, F), tf.float32)])
    rp = "\n".join(structure_repro("TimeDistributed(Dropout)").splitlines()[:4] + [
        "import tensorflow as tf",
        "fn = tf.function(lambda t: layer(t, training=True), input_signature=[tf.TensorSpec((None, None, F), tf.float32)])",
        "print(fn(x).shape, x.shape)"])
    out = fn(x).numpy()
    KS.record(conformance_record, adapter="keras.layers.TimeDistributed(Dropout)", backend="tensorflow",
              feature="undefined time axis (tf.function): every step, fresh masks", seed=SEED, repro=rp,
              reason=f"output shape {out.shape} for input {x.shape}")
    assert out.shape == x.shape, (f"TimeDistributed(Dropout) under tf.function with an undefined time axis returned "
                                  f"shape {out.shape} for input {x.shape} (B={B}, T={T})\nseed={SEED}\nrepro:\n{rp}")
    m, err = recover(keras, lambda t, training: out, x)
    assert err <= VALUE_TOL and constant_lanes(m) == 0.0, (
        f"TimeDistributed(Dropout) under tf.function: mask value error {err:.3g}, lanes constant over time "
        f"{constant_lanes(m):.3g} (expected 0: fresh per step)\nseed={SEED}\nrepro:\n{rp}")
