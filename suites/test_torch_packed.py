"""torch PackedSequence properties, beyond parity with the reference:

- padded positions of ``pad_packed_sequence`` hold ``padding_value`` exactly (a nonzero
  value, so a zero computed there could not pass), while the valid positions equal the
  reference;
- each row's final state is its output at its own last valid step (forward direction) or
  at step 0 (reverse direction), bit for bit, and rows come back in the caller's order
  (unsorted lengths, enforce_sorted False and True);
- packed and padded input give the same valid outputs;
- what torch refuses: unsorted lengths with ``enforce_sorted=True`` and a zero length;
- which CPU kernel runs: packed input with unequal lengths leaves oneDNN for the native
  kernel (``torch.profiler``), recorded with the case.

Every torch path with the "lengths" feature is parametrized (nn.LSTM / nn.GRU and the
LSTMCell / GRUCell loops, time-major and batch_first, enforce_sorted True and False).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, dtypes_of, lengths_of, parity_cases, repro_header, rounded
from conformance.core.frameworks import installed_version, require
from conformance.checks.parity import Run, max_abs_errors, registry_params
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

pytestmark = pytest.mark.framework("torch")

PADDING_VALUE = -7.25
EXAMPLES = max(6, settings.default.max_examples // 15)
PACKED = [p for p in registry_params("lengths") if p.values[0].framework == "torch"]


def with_lengths(info):
    """parity cases of `info` that have lengths, at least one shorter than T."""
    return parity_cases(info, max_batch=4).filter(lambda c: c.lengths is not None and min(c.lengths) < c.steps)


def padding_value_variant(info):
    return dataclasses.replace(info, options={**info.options, "padding_value": PADDING_VALUE})


def repro_snippet(name, case, dtype, check):
    return "\n".join(repro_header(case) + [
        f"info = registry.info_of({name!r})",
        f"# {check}",
        "import dataclasses; info = dataclasses.replace(info, options={**info.options, 'padding_value': "
        f"{PADDING_VALUE}}})",
        f"got = registry.load(info, dtype={dtype!r}).forward(stack, x, h0, c0, **lengths_of(case))",
        "valid = reference.lengths_to_valid(np.array(case.lengths), case.steps)",
        "print('padded positions:', np.unique(got.y[~valid]))",
        "want = reference.run(stack, x, h0, c0, **lengths_of(case))",
        "print('valid max error:', np.max(np.abs(got.y[valid] - want.y[valid])))",
    ])


def final_state_mismatches(case, got, valid_lengths):
    """Rows whose h_n (last layer) is not bit-identical to their output at their own last
    valid step (forward direction) / step 0 (reverse direction)."""
    D = 2 if case.bidirectional else 1
    hout = got.h_n.shape[-1]
    bad = []
    for b, n in enumerate(valid_lengths):
        for d in range(D):
            at = n - 1 if d == 0 else 0
            if not np.array_equal(got.h_n[(case.num_layers - 1) * D + d, b], got.y[at, b, d * hout:(d + 1) * hout]):
                bad.append((b, d))
    return bad


@pytest.mark.parametrize("info, device", PACKED)
def test_packed_padding_value_order_and_final_states(info, device, conformance_record):
    with Run(info, device, "packed: padding_value, batch order, final states", conformance_record) as run:
        run.load(info, device)
        adapters = {dt: registry.load(padding_value_variant(info), device=device, dtype=dt) for dt in dtypes_of(info)}

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(case=with_lengths(info), dtype=st.sampled_from(dtypes_of(info)))
        def check(case, dtype):
            stack, x, h0, c0 = rounded(case)
            repro = repro_snippet(registry.loadable_name(info), case, dtype, "padding_value, order and final states")
            run.example(case.seed, repro)
            got = adapters[dtype].forward(stack, x, h0, c0, **lengths_of(case))
            want = reference.run(stack, x, h0, c0, **lengths_of(case))
            valid = reference.lengths_to_valid(np.asarray(case.lengths), case.steps)
            pad = got.y[~valid]
            assert np.all(pad == PADDING_VALUE), (
                f"{info.name} ({dtype}): padded positions hold {np.unique(pad)[:5]}, not padding_value="
                f"{PADDING_VALUE}\nseed={case.seed}, case={case.short()}\nrepro:\n{repro}")
            err = max(float(np.max(np.abs(got.y[valid] - want.y[valid]))),
                      *(v for k, v in max_abs_errors(got, want).items() if k != "y"))
            tol = tolerance(dtype, *case_shape(stack, case.steps))
            run.observe(err, tol, case.seed)
            assert err <= tol, (f"{info.name} ({dtype}): valid outputs / final states differ from the reference "
                                f"(rows out of order?): {err:.3g} > {tol:.3g}\nseed={case.seed}, "
                                f"case={case.short()}\nrepro:\n{repro}")
            bad = final_state_mismatches(case, got, case.lengths)
            assert not bad, (f"{info.name} ({dtype}): h_n is not the output at each row's own last valid step for "
                             f"(row, direction) {bad}\nseed={case.seed}, case={case.short()}\nrepro:\n{repro}")

        check()


def padded_twin(info):
    """The registered padded path of the same module and layout as packed path `info`."""
    base = info.name.split("[")[0]
    return registry.get(base + ("[batch_first]" if info.option("batch_first") else ""))


@pytest.mark.parametrize("info, device", PACKED)
def test_packed_equals_padded(info, device, conformance_record):
    """Valid outputs of the packed path equal the padded path's on the same input (where the
    padded path computes through the padding, which cannot reach earlier valid steps)."""
    exact = []
    with Run(info, device, "packed vs padded valid outputs", conformance_record) as run:
        packed = run.load(info, device)
        padded = {dt: registry.load(padded_twin(info), device=device, dtype=dt) for dt in dtypes_of(info)}

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(case=with_lengths(info).filter(lambda c: c.num_layers == 1 and not c.bidirectional),
               dtype=st.sampled_from(dtypes_of(info)))
        def check(case, dtype):
            stack, x, h0, c0 = rounded(case)
            run.example(case.seed, repro_snippet(registry.loadable_name(info), case, dtype, "packed vs padded"))
            a = packed[dtype].forward(stack, x, h0, c0, **lengths_of(case))
            b = padded[dtype].forward(stack, x, h0, c0)
            valid = reference.lengths_to_valid(np.asarray(case.lengths), case.steps)
            err = float(np.max(np.abs(a.y[valid] - b.y[valid])))
            exact.append(err == 0.0)
            tol = tolerance(dtype, *case_shape(stack, case.steps))
            run.observe(err, tol, case.seed)
            assert err <= tol, (f"{info.name} vs {padded_twin(info).name} ({dtype}): valid outputs differ by "
                                f"{err:.3g} > {tol:.3g}\nseed={case.seed}, case={case.short()}")

        check()
        run.record["reason"] = f"bit-identical in {sum(exact)} of {len(exact)} cases (one layer, one direction)"


REFUSALS = {  # case -> what torch says
    "unsorted lengths with enforce_sorted=True": ("[packed,enforce_sorted=True]", (2, 3, 1), "sorted in decreasing"),
    "a zero length": ("[packed,enforce_sorted=False]", (2, 0, 1), "greater than 0"),
}


@pytest.mark.parametrize("what", list(REFUSALS))
@pytest.mark.parametrize("module", ["torch.nn.LSTM", "torch.nn.GRU"])
def test_pack_padded_sequence_refuses(module, what, conformance_record):
    """torch refuses these at pack time (pack_padded_sequence), with a RuntimeError naming the rule."""
    torch = require("torch")
    from torch.nn.utils.rnn import pack_padded_sequence

    suffix, lengths, words = REFUSALS[what]
    enforce = "True" in suffix
    record = dict(adapter=module + suffix, framework="torch", framework_version=installed_version("torch"),
                  device="cpu", feature=f"pack_padded_sequence refuses {what}")
    snippet = (f"import torch; from torch.nn.utils.rnn import pack_padded_sequence\n"
               f"pack_padded_sequence(torch.zeros(3, 3, 2), torch.tensor({list(lengths)}), enforce_sorted={enforce})")
    record["repro"] = snippet
    with pytest.raises(RuntimeError) as e:
        pack_padded_sequence(torch.zeros(3, 3, 2), torch.tensor(list(lengths)), enforce_sorted=enforce)
    record["reason"] = f"RuntimeError: {str(e.value).splitlines()[0][:200]}"
    conformance_record(**record)
    assert words in str(e.value), f"torch {installed_version('torch')} now says {e.value!r}\nrepro:\n{snippet}"


KERNEL_CASES = {  # label -> (registered path, lengths or None)
    "padded": ("torch.nn.LSTM", None),
    "packed, equal lengths": ("torch.nn.LSTM[packed,enforce_sorted=False]", (5, 5, 5)),
    "packed, unequal lengths": ("torch.nn.LSTM[packed,enforce_sorted=False]", (5, 2, 4)),
}
EXPECTED_KERNEL = {"padded": "oneDNN", "packed, equal lengths": "oneDNN", "packed, unequal lengths": "native"}


@pytest.mark.parametrize("label", list(KERNEL_CASES))
def test_cpu_kernel_of_packed_input(label, conformance_record):
    """float32 LSTM on CPU: oneDNN for padded input and for packed input whose lengths are all
    equal; the native kernel once lengths differ (observed through torch.profiler)."""
    torch = require("torch")
    name, lengths = KERNEL_CASES[label]
    expected = EXPECTED_KERNEL[label] if torch.backends.mkldnn.is_available() else "native"
    case = Case(cell="lstm", steps=5, batch=3, input_size=4, hidden_size=6, initial_state=True, seed=20261123,
                lengths=lengths)
    stack, x, h0, c0 = rounded(case)
    adapter = registry.load(name)
    kernel = adapter.kernel_of(stack, x, h0, c0, **lengths_of(case))
    snippet = ("from conformance.adapters import registry\n"
               "from conformance.core.adapter_strategies import lengths_of, rounded\n"
               f"from conformance.core.strategies import Case\ncase = {case.short()}\nstack, x, h0, c0 = rounded(case)\n"
               f"print(registry.load({name!r}).kernel_of(stack, x, h0, c0, **lengths_of(case)))")
    conformance_record(adapter=name, framework="torch", framework_version=installed_version("torch"), device="cpu",
                       feature=f"CPU kernel, {label}", kernel=kernel, seed=case.seed, repro=snippet,
                       reason=f"lengths {lengths}: torch.profiler shows the {kernel} kernel")
    assert kernel == expected, (
        f"{name} with {label} ran {kernel}, expected {expected} (torch "
        f"{installed_version('torch')}: a dispatch change, an upgrade finding)\nrepro:\n{snippet}")
