"""Gradient parity, dropout off: every adapter path declaring "gradients" against
``reference.run_vjp``.

The cases are the smoke-parity cases (``parity_cases`` and the every-feature ``full_case``;
float32-rounded weights, inputs and states, variable lengths under the path's padding
policy where declared); the cotangents dy, dh_n, dc_n are drawn from the case's seed
(``adapter_strategies.cotangents``) and rounded to float32 as well. Compared: the forward
outputs (as in the smoke suite) and the gradients w.r.t. x, h0, c0 and every weight array of
every layer and direction (``parity.grad_errors``), each within

    GRAD_FACTOR * tolerance(dtype, steps, fan_in, magnitude=max |reference gradient|)

The backward pass walks the dependency chain a second time (GRAD_FACTOR = 2, as in
suites/test_torch_dropout.py), and a weight gradient is a sum over every step and batch row,
so its float32 error is relative to its size (the `magnitude` factor; see
conformance/core/tolerances.py). A path without the feature is simply not parametrized here.
"""
from __future__ import annotations

import pytest
from hypothesis import settings

import reference
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, cotangents, lengths_of, repro_header, rounded
from conformance.checks.parity import Run, check_parity_cases, grad_errors, max_abs_errors, registry_params
from conformance.core.tolerances import tolerance

FEATURE = "dropout-off gradient parity"
GRAD_FACTOR = 2.0
EXAMPLES = max(8, settings.default.max_examples // 10)


def repro_snippet(name, case, dtype):
    """Python that rebuilds the case and prints every output and gradient error."""
    return "\n".join(repro_header(case) + [
        "from conformance.core.adapter_strategies import cotangents",
        "from conformance.checks.parity import grad_errors, max_abs_errors",
        "dy, dh, dc = cotangents(case, stack)",
        f"got = registry.load({name!r}, dtype={dtype!r}).vjp(stack, x, dy, dh, dc, h0, c0, **lengths_of(case))",
        "want = reference.run_vjp(stack, x, dy, dh, dc, h0, c0, padding=case.padding, **lengths_of(case))",
        "print(max_abs_errors(got[0], want[0]), grad_errors(got[1], want[1]))",
    ])


def tolerances(dtype, steps, fan_in, gerrs):
    """{name: tolerance} for the gradient errors {name: (err, magnitude)}."""
    return {k: GRAD_FACTOR * tolerance(dtype, steps, fan_in, magnitude=m) for k, (_, m) in gerrs.items()}


@pytest.mark.parametrize("info, device", registry_params("gradients"))
def test_gradient_parity(info, device, conformance_record):
    with Run(info, device, FEATURE, conformance_record) as run:
        adapters = run.load(info, device)

        def check(case, dtype):
            stack, x, h0, c0 = rounded(case)
            dy, dh, dc = cotangents(case, stack)
            steps, fan_in = case_shape(stack, case.steps)
            repro = repro_snippet(registry.loadable_name(info), case, dtype)
            run.example(case.seed, repro)
            got, got_grads = adapters[dtype].vjp(stack, x, dy, dh, dc, h0, c0, **lengths_of(case))
            want, want_grads = reference.run_vjp(stack, x, dy, dh, dc, h0, c0, padding=case.padding,
                                                 **lengths_of(case))
            errs, gerrs = max_abs_errors(got, want), grad_errors(got_grads, want_grads)
            tol = tolerance(dtype, steps, fan_in)
            gtols = tolerances(dtype, steps, fan_in, gerrs)
            ratios = {k: v / tol for k, v in errs.items()}
            ratios.update({k: e / gtols[k] for k, (e, _) in gerrs.items()})
            name = max(ratios, key=ratios.get)
            run.observe(*((errs[name], tol) if name in errs else (gerrs[name][0], gtols[name])), case.seed)
            bad = {k: r for k, r in ratios.items() if r > 1}
            assert not bad, (
                f"{info.name} ({dtype}, {device}) gradients differ from the reference: "
                + ", ".join(f"{k}: {r:.3g}x its tolerance" for k, r in sorted(bad.items(), key=lambda kv: -kv[1]))
                + f" (steps={steps}, fan_in={fan_in})\nseed={case.seed}, case={case.short()}\nrepro:\n{repro}")

        check_parity_cases(info, check, EXAMPLES)
