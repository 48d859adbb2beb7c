"""Systematic coverage of onnxruntime's CPU ``LSTM`` / ``GRU`` operators: hypothesis draws one whole
one-node ONNX model at a time (`conformance.adapters.onnxruntime.coverage.configs`: op; direction
forward / reverse / bidirectional, the attribute given or omitted; hidden_size, batch, T, input size;
``activations`` from the spec's full list, with ``activation_alpha`` / ``activation_beta`` given or
omitted (documented defaults); ``clip``; ``input_forget``; ``linear_before_reset``; ``layout`` 0 or
omitted; optional inputs B, sequence_lens (1..T), initial_h, initial_c, P present or omitted; the
requested outputs, others "") and `coverage.run_config` checks it: onnx.checker (else the strategy
is wrong), session creation and run (a refusal of a valid model is a problem), output shapes, finite
values, and values against `coverage.spec_lstm / spec_gru` (the ONNX spec equations in float64,
proved against the reference by tests/test_onnx_spec_oracle.py) within the float32 tolerance.

Outside the draws, as existing findings: layout=1 (onnxruntime-layout-1-refused) and sequence_lens
entries of 0 (onnxruntime-zero-sequence-length-zeroes-state), both in suites/test_onnxruntime_rnn.py.
Known deviations are data: `KNOWN` says which draws one concerns, ``expectations/onnxruntime.toml``
(entries on ``test_known_deviation[<name>]``) where it is expected; ``test_known_deviation`` reruns a
fixed draw of each, so an entry that stops matching is seen (xpass / stale).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conformance.core import paths
from conformance.core.frameworks import installed_version, require
from conformance.results import expectations as expect

pytestmark = pytest.mark.framework("onnxruntime")
EXAMPLES = 4 * settings.default.max_examples  # a draw takes ~5 ms
NODE = "suites/test_onnxruntime_coverage.py::test_known_deviation[{}]"
ENTRIES = expect.load_dir(paths.EXPECTATIONS)


def _uses_default_threshold(cfg):
    """True where some ThresholdedRelu gets no activation_alpha value (the documented default applies)."""
    from conformance.adapters.onnxruntime.coverage import ACTIVATIONS

    acts = cfg.get("activations") or []
    given_alphas = len(cfg.get("activation_alpha") or [])
    used = 0
    for a in acts:
        if ACTIVATIONS[a][0]:
            used += 1
            if a == "ThresholdedRelu" and used > given_alphas:
                return True
    return False


def _cfg(op="GRU", **kw):
    from conformance.adapters.onnxruntime.coverage import base_cfg

    return base_cfg(op, **kw)


# name: (which drawn problems it explains, a fixed draw that shows it)
KNOWN = {
    "thresholdedrelu-default-alpha": (
        lambda c, p: p.kind == "values" and _uses_default_threshold(c),
        dict(op="GRU", activations=["Sigmoid", "ThresholdedRelu"], x_scale=1.0, data_seed=3)),
    # float32 log(1 + exp(x)) overflows above x ~ 88.7: inf, then inf / nan downstream
    "softplus-overflow": (
        lambda c, p: p.kind in ("nonfinite", "values") and _softplus_beyond_float32(c),
        dict(op="GRU", activations=["Sigmoid", "Softplus"], x_scale=300.0, data_seed=3)),
}


def _softplus_beyond_float32(cfg):
    from conformance.adapters.onnxruntime.coverage import max_input

    return max_input(cfg, "Softplus") > 88.0


def expected_here(name):
    return expect.entry_for(ENTRIES, NODE.format(name), {"onnxruntime": installed_version("onnxruntime")}, None)


def explain(cfg, problem):
    for name, (applies, _) in KNOWN.items():
        entry = expected_here(name)
        if entry is not None and applies(cfg, problem):
            return name, entry
    return None, None


def record_base(op, feature):
    return dict(adapter=f"onnxruntime.{op}", framework="onnxruntime",
                framework_version=installed_version("onnxruntime"), device="cpu", feature=feature)


def second_opinion(cfg):
    """Max |onnx.reference.ReferenceEvaluator - oracle| and |- onnxruntime| per output (evidence only:
    its LSTM / GRU ignore activations, clip, input_forget and sequence_lens)."""
    import numpy as np

    from conformance.adapters.onnxruntime import coverage as OC

    model, feeds = OC.build(cfg)
    names = [n for n in OC.out_names(cfg) if n]
    try:
        with np.errstate(all="ignore"):
            ev = OC.run_reference_evaluator(model, feeds)
        got = OC.run_ort(model, feeds)
    except Exception as e:  # noqa: BLE001 -- evidence only
        return f"reference evaluator: {type(e).__name__}: {str(e)[:120]}"
    want = OC.oracle(cfg, feeds)
    return "; ".join(f"{n}: |evaluator - spec| {np.abs(e - want[n]).max():.3g}, |evaluator - onnxruntime| "
                     f"{np.abs(e - g).max():.3g}" for n, e, g in zip(names, ev, got))


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_attribute_draws(op, conformance_record, conformance_section):
    require("onnxruntime")
    require("onnx")
    from conformance.adapters.onnxruntime import coverage as OC

    seen = {"draws": 0, "checked": 0, "threshold": 0, "ill-conditioned": 0}
    known = {}
    worst = {"ratio": -1.0}

    @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cfg=OC.configs(op))
    def check(cfg):
        problems, notes = OC.run_config(cfg)
        seen["draws"] += 1
        seen["threshold"] += any("ThresholdedRelu input" in n for n in notes)
        seen["ill-conditioned"] += any("ill-conditioned" in n for n in notes)
        for n in notes:
            if n.startswith("max error"):
                seen["checked"] += 1
                err, tol = float(n.split()[2]), float(n.split("tolerance ")[1].split(",")[0])
                if not problems and err / tol > worst["ratio"]:  # the worst agreeing draw
                    worst.update(ratio=err / tol, err=err, tol=tol, seed=cfg["data_seed"])
        for p in problems:
            assert p.kind != "invalid_model", f"the strategy drew an invalid model: {p.detail}\ncfg = {cfg!r}"
            name, entry = explain(cfg, p)
            if name is not None:
                known.setdefault(name, (entry, cfg, p))
                continue
            rp = OC.repro_snippet(cfg)
            opinion = second_opinion(cfg) if p.kind == "values" else ""
            conformance_record(**record_base(op, "ONNX attributes and optional inputs (hypothesis)"),
                               seed=cfg["data_seed"], reason=f"{p.kind}: {p.detail} {opinion}"[:500], repro=rp)
            conformance_section("findings", adapter=f"onnxruntime.{op}", knob=p.kind, expected=False,
                                summary=p.detail[:300], evidence=rp)
            raise AssertionError(f"onnxruntime.{op} [{p.kind}]: {p.detail}\n{opinion}\nseed={cfg['data_seed']}"
                                 f"\nrepro:\n{rp}")

    check()
    for name, (entry, cfg, p) in known.items():
        conformance_section("findings", adapter=f"onnxruntime.{op}", knob=name, expected=True, summary=p.detail[:300],
                            evidence=OC.repro_snippet(cfg), link=entry.link, finding=entry.finding)
    rec = record_base(op, "ONNX attributes and optional inputs (hypothesis)")
    if "err" in worst:
        rec.update(max_abs_err=worst["err"], tolerance=worst["tol"], seed=worst["seed"])
    conformance_record(**rec, reason=(f"{seen['draws']} draws, {seen['checked']} value-checked; values unchecked: "
                                      f"{seen['threshold']} (a ThresholdedRelu input at its threshold), "
                                      f"{seen['ill-conditioned']} (ill-conditioned); known deviations seen: "
                                      f"{sorted(known) or 'none'}"))
    assert seen["checked"] > 0, "no draw was value-checked"


@pytest.mark.parametrize("name", list(KNOWN))
def test_known_deviation(name, conformance_record):
    """The fixed draw of a known deviation shows no problem (expected to fail where onnxruntime.toml says)."""
    require("onnxruntime")
    require("onnx")
    from conformance.adapters.onnxruntime import coverage as OC

    applies, kw = KNOWN[name]
    cfg = _cfg(**kw)
    problems, notes = OC.run_config(cfg)
    rp = OC.repro_snippet(cfg)
    opinion = second_opinion(cfg) if problems else ""
    conformance_record(**record_base(cfg["op"], f"known deviation {name}"), seed=cfg["data_seed"], repro=rp,
                       reason=("; ".join(f"{p.kind}: {p.detail}" for p in problems) + f" {opinion}")[:500]
                       or f"no problem ({notes})")
    assert all(applies(cfg, p) for p in problems), "the fixed draw shows another problem than its own"
    assert not problems, ("; ".join(f"[{p.kind}] {p.detail}" for p in problems)
                          + f"\nsecond opinion: {opinion}\nseed={cfg['data_seed']}\nrepro:\n{rp}")
