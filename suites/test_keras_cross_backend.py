"""Keras 3 across its backends: ``LSTM`` / ``GRU`` (reset_after both ways) on the TensorFlow, JAX
and torch backends with the same weights, inputs, ``mask=`` (leading masked steps, an inner
gap, right padding) and nonzero initial states, for every combination of ``unroll``,
``go_backwards`` and ``zero_output_for_mask`` (`conformance.adapters.keras.cross_backend.CONFIGS`).

Each backend runs in its own subprocess (one per backend, every configuration in one go; Keras
selects its backend per process); this module is not marked ``keras`` and runs in the main
process. Per configuration the backends are compared pairwise and each with
``reference.run`` under the documented policy (`keras_strategies.expected_policy`), all with
the parity tolerance ``tolerance("float32", T, F + u)``: two paths agree when their outputs and
final states differ by at most that much. Known deviations are data
(`keras_cross_backend.KNOWN`): the test expects exactly the listed backends to crash or deviate,
so a new deviation fails and a fixed one fails too (remove it from the table).
The per-backend masked-step checks against the reference are suites/test_keras_padding.py.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import reference
from conformance.adapters.keras import cross_backend as XB
from conformance.adapters.keras import strategies as KS
from conformance.core.tolerances import tolerance

pytestmark = pytest.mark.framework("keras")

IDS = [XB.config_id(c) for c in XB.CONFIGS]


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """{backend: OUT arrays, or a str: why it is missing / failed}; one subprocess per backend."""
    d = tmp_path_factory.mktemp("keras_cross_backend")
    if sum(XB.available(b) is None for b in XB.BACKENDS) < 2:  # nothing to compare: no subprocess
        return {b: XB.available(b) or "not compared (fewer than two backends installed)" for b in XB.BACKENDS}
    XB.write_inputs(d / "in.npz")
    out = {}
    for b in XB.BACKENDS:
        why = XB.available(b)
        if why:
            out[b] = why
            continue
        try:
            out[b] = XB.run_backend(b, d / "in.npz", d / f"{b}.npz")
        except Exception as e:  # reported per configuration
            out[b] = f"failed: {e}"
    return out


def repro(config):
    cid = XB.config_id(config)
    return "\n".join([
        "# every backend on this configuration, each in its own process:",
        "import numpy as np; from conformance.adapters.keras import cross_backend as XB",
        "XB.write_inputs('in.npz')",
        f"outs = {{b: XB.run_backend(b, 'in.npz', b + '.npz') for b in {XB.BACKENDS!r}}}",
        f"print({{b: o.get({cid + '/error'!r}, o.get({cid + '/y'!r})) for b, o in outs.items()}})",
        f"# the layer, per backend: {XB.layer_src(config, 3)}",
        f"#   called as layer(x, mask=mask, initial_state=[h0{', c0' if config['cell'] == 'lstm' else ''}], "
        "training=False) with the arrays of in.npz",
    ])


def outputs(out, cid):
    """{"y", "h", "c"} of one configuration as time-major y, or the error string."""
    if f"{cid}/error" in out:
        return str(out[f"{cid}/error"])
    return {k: out[f"{cid}/{k}"] for k in ("y", "h", "c") if f"{cid}/{k}" in out}


def max_diff(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def reference_outputs(config):
    stack, x, h0, c0, valid = XB.case_of(config)
    want = reference.run(stack, x, h0, c0, step_mask=valid, padding=KS.expected_policy(config["zero_output_for_mask"]),
                         go_backwards=config["go_backwards"])
    ref = {"y": np.swapaxes(want.y, 0, 1), "h": want.h_n[0]}
    if want.c_n is not None:
        ref["c"] = want.c_n[0]
    return ref, tolerance("float32", x.shape[0], x.shape[2] + h0.shape[-1])


def groups(got, tol):
    """Backends that agree pairwise (within tol), as a list of sorted lists."""
    out = []
    for b in got:
        for g in out:
            if all(max_diff(got[b], got[o]) <= tol for o in g):
                g.append(b)
                break
        else:
            out.append([b])
    return [sorted(g) for g in out]


@pytest.mark.parametrize("config", XB.CONFIGS, ids=IDS)
def test_backends_agree(config, backends, conformance_record, conformance_section):
    cid = XB.config_id(config)
    missing = {b: v for b, v in backends.items() if isinstance(v, str) and not v.startswith("failed")}
    failed = {b: v for b, v in backends.items() if isinstance(v, str) and v.startswith("failed")}
    rp = repro(config)
    assert not failed, f"{cid}: a backend's subprocess failed: {failed}\nseed={XB.SEED}\nrepro:\n{rp}"
    runs = {b: v for b, v in backends.items() if not isinstance(v, str)}
    if len(runs) < 2:
        pytest.skip(f"fewer than two Keras backends installed ({'; '.join(f'{b}: {w}' for b, w in missing.items())})")
    ref, tol = reference_outputs(config)
    status, got, notes = {}, {}, {}
    for b, out in runs.items():
        o = outputs(out, cid)
        if isinstance(o, str):
            status[b], notes[b] = "crash", o
            continue
        got[b] = o
        err = max_diff(o, ref)
        status[b] = "conforms" if err <= tol else "deviates"
        notes[b] = f"max error {err:.3g} vs the reference"
    agree = groups(got, tol)
    expected = {b: (XB.known(config, b, str(runs[b]["keras"])) or {}).get("outcome", "conforms") for b in runs}
    summary = (f"agreeing groups {agree}; " + "; ".join(f"{b}: {status[b]} ({notes[b]})" for b in sorted(runs))
               + f"; tolerance {tol:.2g}")
    # the recorded error: of the backends expected to conform (known deviators are in the reason
    # and in `findings`), so a passed record never shows an error above its tolerance
    err = max((max_diff(o, ref) for b, o in got.items() if expected[b] == "conforms"), default=None)
    KS.record(conformance_record, adapter=f"keras.layers.{config['cell'].upper()}", backend=",".join(sorted(runs)),
              feature=f"cross-backend agreement ({cid})", err=err, tol=tol, seed=XB.SEED, reason=summary[:500],
              repro=rp)
    for b in sorted(runs):
        if status[b] != "conforms":
            k = XB.known(config, b, str(runs[b]["keras"]))
            as_known = k is not None and k["outcome"] == status[b]
            conformance_section("findings", adapter=f"keras.layers.{config['cell'].upper()} ({b})", knob=cid,
                                expected=as_known, summary=f"{b} {status[b]}: {notes[b]}; agreeing groups {agree}",
                                evidence=(k["reason"] + "\n" if k else "") + rp,
                                finding=k["finding"] if as_known else None)
    # The conforming backends must agree with each other, whatever the reference says.
    conforming = [b for b in got if status[b] == "conforms"]
    for a, b in itertools.combinations(conforming, 2):
        assert max_diff(got[a], got[b]) <= tol, f"{cid}: {a} and {b} differ beyond {tol:.2g}\nrepro:\n{rp}"
    wrong = [f"{b} {status[b]} where {expected[b]} was expected"
             + (" (a known deviation changed: update keras_cross_backend.KNOWN)" if expected[b] != "conforms" else "")
             for b in sorted(runs) if status[b] != expected[b]]
    assert not wrong, f"{cid}: " + "; ".join(wrong) + f"\n{summary}\nseed={XB.SEED}\nrepro:\n{rp}"
