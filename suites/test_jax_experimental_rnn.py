"""``jax.experimental.rnn``: the cuDNN ``lstm`` against the reference where a CUDA GPU is
visible to JAX (here: a skip with the reason), its CPU reference ``lstm_ref`` refusing
dropout, and the flat cuDNN weight layout the adapter packs (size = jax's own count).

The cuDNN run must prove it ran cuDNN: the adapter checks that the lowered computation of each
jitted function holds the cuDNN RNN custom call (`SilentFallback` otherwise); a CPU run never counts.
Parity of both paths with the reference (outputs, states, lengths, gradients) is in the
registry-wide suites for ``jax.experimental.rnn.lstm_ref`` (CPU); the cuDNN path is not a
registry entry (entries must run on "cpu"), so its full-feature case is here.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import reference
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, cotangents, full_case, lengths_of, rounded
from conformance.adapters.base import DeviceUnavailable
from conformance.core.frameworks import installed_version, require
from conformance.checks.parity import grad_errors, max_abs_errors
from conformance.core.tolerances import tolerance

pytestmark = pytest.mark.framework("jax")

GPU_PATH = "jax.experimental.rnn.lstm"
# Not in the registry (whose entries must run on "cpu"): the CPU twin lstm_ref is, with the
# same features; this is the same adapter on device "cuda".
GPU_INFO = dataclasses.replace(registry.get("jax.experimental.rnn.lstm_ref"), name=GPU_PATH, devices=("cuda",))


def record_base(name, device, feature):
    return dict(adapter=name, framework="jax", framework_version=installed_version("jax"), device=device,
                feature=feature)


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["cuda"])
def test_cudnn_lstm_full_case(device, conformance_record):
    """Every declared feature at once (2 layers, bidirectional, initial state, unsorted lengths),
    outputs and gradients, on the cuDNN kernel; skips without a GPU."""
    require("jax")
    require("jax.experimental.rnn")  # a jax release without it: a skip that says so
    info = GPU_INFO
    case = full_case(info)
    rec = record_base(GPU_PATH, device, "cuDNN LSTM: every declared feature, outputs and gradients")
    rec["repro"] = ("from suites.test_jax_experimental_rnn import GPU_INFO; from conformance.adapters import registry\n"
                    f"registry.load(GPU_INFO, device={device!r})  # then as test_cudnn_lstm_full_case")
    try:
        adapter = registry.load(info, device=device)
    except DeviceUnavailable as e:
        rec["reason"] = str(e)
        conformance_record(**rec)
        pytest.skip(str(e))
    stack, x, h0, c0 = rounded(case)
    dy, dh, dc = cotangents(case, stack)
    got, grads = adapter.vjp(stack, x, dy, dh, dc, h0, c0, **lengths_of(case))
    want, wgrads = reference.run_vjp(stack, x, dy, dh, dc, h0, c0, padding=info.padding, **lengths_of(case))
    steps, fan_in = case_shape(stack, case.steps)
    tol = tolerance("float32", steps, fan_in)
    err = max(max_abs_errors(got, want).values())
    gerr = {k: e / (2 * tolerance("float32", steps, fan_in, magnitude=m)) for k, (e, m) in
            grad_errors(grads, wgrads).items()}
    rec.update(seed=case.seed, max_abs_err=err, tolerance=tol, kernel=adapter.kernel_of(stack, x),
               reason=f"worst gradient error / tolerance {max(gerr.values()):.3g}")
    conformance_record(**rec)
    assert err <= tol and max(gerr.values()) <= 1, f"{rec['reason']}; output error {err:.3g} > {tol:.3g}"


def test_lstm_ref_refuses_dropout(conformance_record):
    """lstm_ref, the CPU stand-in, cannot model cuDNN's dropout: it raises for dropout != 0."""
    require("jax")
    import jax.numpy as jnp
    from jax.experimental import rnn

    from conformance.adapters.jax.experimental_rnn import pack_weights

    rng = np.random.default_rng(0)
    w = reference.random_lstm(rng, 3, 2)
    W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(jnp.asarray(pack_weights([[w]])), 3, 2, 1, False)
    z = jnp.zeros((1, 2, 2))
    rec = record_base("jax.experimental.rnn.lstm_ref", "cpu", "dropout refused")
    rec["repro"] = "jax.experimental.rnn.lstm_ref(x, h0, c0, W_ih, W_hh, b_ih, b_hh, seq_lengths, 3, 2, 1, 0.5, False)"
    with pytest.raises(NotImplementedError) as e:
        rnn.lstm_ref(jnp.zeros((2, 4, 3)), z, z, W_ih, W_hh, b_ih, b_hh, jnp.full((2,), 4, jnp.int32), 3, 2, 1,
                     0.5, False)
    rec["reason"] = f"NotImplementedError: {e.value}"
    conformance_record(**rec)
    assert "ropout" in str(e.value)


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (2, True)])
def test_flat_weight_layout_size(layers, bidirectional, conformance_record):
    """pack_weights' vector has exactly jax's get_num_params_in_lstm elements."""
    require("jax")
    from jax.experimental import rnn

    from conformance.adapters.jax.experimental_rnn import pack_weights

    stack = reference.random_stack(np.random.default_rng(1), "lstm", 3, 4, layers, bidirectional)
    n = int(rnn.get_num_params_in_lstm(3, 4, layers, bidirectional))
    size = pack_weights(stack).size
    rec = record_base("jax.experimental.rnn.lstm_ref", "cpu", f"flat weight layout ({layers} layers, "
                      f"{'bi' if bidirectional else 'uni'}directional)")
    rec.update(reason=f"{size} packed elements, jax counts {n}",
               repro=f"jax.experimental.rnn.get_num_params_in_lstm(3, 4, {layers}, {bidirectional})")
    conformance_record(**rec)
    assert size == n, rec["reason"]


def test_lstm_ref_zero_length_row(conformance_record):
    """A row of seq_lengths 0 has no valid step: its h_n / c_n must be the initial state (as the
    reference, Keras and torch's packed sequences give for an empty row), its outputs zero."""
    require("jax")
    import jax.numpy as jnp
    from jax.experimental import rnn

    from conformance.adapters.jax.experimental_rnn import pack_weights

    T, B, I, H = 4, 2, 3, 2
    rng = np.random.default_rng(7)
    w = reference.random_lstm(rng, I, H)
    x, h0, c0 = rng.standard_normal((B, T, I)), rng.standard_normal((1, B, H)), rng.standard_normal((1, B, H))
    lengths = np.array([T, 0], np.int32)
    W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(jnp.asarray(pack_weights([[w]])), I, H, 1, False)
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    y, h_n, c_n = (np.asarray(a) for a in rnn.lstm_ref(f32(x), f32(h0), f32(c0), W_ih, W_hh, b_ih, b_hh,
                                                        jnp.asarray(lengths), I, H, 1, 0.0, False))
    full = reference.run(w, np.swapaxes(x, 0, 1), h0, c0)  # the empty row run over all T steps
    off = float(max(np.abs(h_n[0, 1] - h0[0, 1]).max(), np.abs(c_n[0, 1] - c0[0, 1]).max()))
    after_all = float(np.abs(h_n[0, 1] - full.h_n[0, 1]).max())
    rec = record_base("jax.experimental.rnn.lstm_ref", "cpu", "seq_lengths 0: final state")
    rec["repro"] = ("# see findings/jax-lstm-ref-zero-length-final-state-after-padding.py (standalone)\n"
                    "python -m pytest suites/test_jax_experimental_rnn.py -k zero_length")
    rec["reason"] = (f"row of length 0: |h_n - h0|, |c_n - c0| up to {off:.3g}; |h_n - state after all {T} "
                     f"steps| {after_all:.3g}; outputs zero {bool(np.all(y[1] == 0))}")
    conformance_record(**rec)
    assert off <= 1e-6 and np.all(y[1] == 0), rec["reason"] + "\nseed=7\n" + rec["repro"]
