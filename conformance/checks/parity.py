"""What the registry-wide parity suites share: parameters, adapter loading, error measures,
the worst-case tracker and the record that goes into the report.

A suite here runs one hypothesis property per (adapter path, device). It keeps the worst
example (largest error / tolerance) and writes one record with it; a failing example's repro
replaces it. `Run` holds that bookkeeping so each suite is only its property.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conformance.adapters import registry
from conformance.core.adapter_strategies import dtypes_of, full_case, parity_cases
from conformance.adapters.base import DeviceUnavailable
from conformance.core.frameworks import installed_version, require

__all__ = ["registry_params", "load_adapters", "max_abs_errors", "grad_errors", "Run", "check_parity_cases"]


def registry_params(feature=None):
    """pytest params (info, device) over `registry.adapters()` and their devices, only paths
    declaring `feature` when given; ids are the adapter names (``@cuda`` for CUDA, marked ``gpu``). Keras
    paths are marked ``keras``: `conformance run` runs them once per Keras backend."""
    out = []
    for info in registry.adapters():
        if feature is not None and feature not in info.features:
            continue
        marks = [pytest.mark.keras] if info.framework == "keras" else []  # re-run on every Keras backend
        for device in info.devices:
            # a case on another device (CUDA) is marked gpu: `rnn-conformance gpu` runs those
            out.append(pytest.param(info, device, id=info.name if device == "cpu" else f"{info.name}@{device}",
                                    marks=marks if device == "cpu" else marks + [pytest.mark.gpu]))
    return out


def load_adapters(info, device):
    """{dtype: adapter} for every dtype the path runs in; requires its framework (skip if
    absent); a device the machine lacks raises DeviceUnavailable."""
    require(info.framework)
    for module in info.requires:
        require(module)
    return {dt: registry.load(info, device=device, dtype=dt) for dt in dtypes_of(info)}


def max_abs_errors(got, want):
    """{name: max |got - want|} over y, h_n, c_n; shapes must match exactly."""
    errs = {}
    for k in ("y", "h_n", "c_n"):
        w, g = getattr(want, k), getattr(got, k)
        if w is None:
            assert g is None, f"{k}: expected None (GRU), got an array of shape {np.shape(g)}"
            continue
        g = np.asarray(g)
        assert g.shape == w.shape, f"{k}: shape {g.shape}, expected {w.shape}"
        assert np.all(np.isfinite(g)), f"{k}: not finite"
        errs[k] = float(np.max(np.abs(g.astype(np.float64) - w)))
    return errs


def grad_errors(got, want):
    """{name: (max |got - want|, max |want|)} over dx, dh0, dc0 and every weight array the
    reference has (``W[l][d]``, ``b_h[l][d]``, ...); shapes must match exactly."""
    pairs = [("dx", got.dx, want.dx), ("dh0", got.dh0, want.dh0), ("dc0", got.dc0, want.dc0)]
    for l, (gl, wl) in enumerate(zip(got.weights, want.weights)):
        for d, (g, w) in enumerate(zip(gl, wl)):
            pairs += [(f"{k}[{l}][{d}]", getattr(g, k), getattr(w, k)) for k in w.array_names()]
    out = {}
    for name, g, w in pairs:
        if w is None:
            continue
        assert g is not None, f"{name}: the adapter returned no gradient"
        g = np.asarray(g, np.float64)
        assert g.shape == w.shape, f"{name}: gradient shape {g.shape}, expected {w.shape}"
        assert np.all(np.isfinite(g)), f"{name}: gradient not finite"
        out[name] = (float(np.max(np.abs(g - w), initial=0.0)), float(np.max(np.abs(w), initial=0.0)))
    return out


class Run:
    """Bookkeeping of one property run: the record, the worst example, the last repro, the
    kernels seen. Use as a context manager around the hypothesis property call."""

    def __init__(self, info, device, feature, conformance_record):
        self.record = dict(adapter=info.name, framework=info.framework,
                           framework_version=info.version or installed_version(info.distribution), backend=info.backend,
                           device=device, feature=feature)
        self._write = conformance_record
        self.worst, self.last, self.kernels = {}, {}, Counter()

    def skip(self, reason):
        self._write(**self.record)
        pytest.skip(reason)

    def load(self, info, device):
        """load_adapters, a missing device becoming a recorded skip; sets the record's backend."""
        try:
            adapters = load_adapters(info, device)
        except DeviceUnavailable as e:
            self.skip(str(e))
        self.record["backend"] = getattr(adapters["float32"], "backend", info.backend)
        return adapters

    def example(self, seed, repro):
        self.last.update(seed=seed, repro=repro)

    def observe(self, err, tol, seed):
        """Keep the example with the largest err / tol."""
        if not self.worst or err / tol > self.worst["err"] / self.worst["tol"]:
            self.worst.update(err=err, tol=tol, seed=seed)

    def kernel(self, adapter, dtype, *args, **kwargs):
        """Count the kernel `adapter.kernel_of(*args, **kwargs)` names, if the adapter tells."""
        if hasattr(adapter, "kernel_of"):
            self.kernels[f"{dtype}: {adapter.kernel_of(*args, **kwargs)}"] += 1

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None and not issubclass(kind, pytest.skip.Exception) and self.last:
            self.record.update(repro=self.last["repro"], seed=self.last["seed"])  # the failing (shrunk) example
        elif self.worst:
            self.record["seed"] = self.worst["seed"]
        if self.worst:
            self.record.update(max_abs_err=self.worst["err"], tolerance=self.worst["tol"])
        if self.kernels:
            self.record["kernel"] = ", ".join(f"{k} ({n} cases)" for k, n in sorted(self.kernels.items()))
        self._write(**self.record)
        return False


def check_parity_cases(info, check, examples):
    """Run `check(case, dtype)` on `examples` hypothesis-drawn parity cases of path `info` and,
    in every dtype it declares, on the case with every declared feature at once."""
    prop = given(case=parity_cases(info), dtype=st.sampled_from(dtypes_of(info)))(check)
    prop = settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])(prop)
    for dtype in dtypes_of(info):
        prop = example(case=full_case(info), dtype=dtype)(prop)
    prop()
