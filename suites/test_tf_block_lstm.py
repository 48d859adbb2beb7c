"""``tf.raw_ops.BlockLSTM`` / ``BlockLSTMV2`` with ``seq_len_max < T`` (the fused kernel behind
the old ``LSTMBlockFusedCell``): the first ``seq_len_max`` steps equal the reference run on
them (peepholes, forget_bias, cell_clip drawn), and every later step of ``h`` (the op's output)
is zero-filled -- the documented contract (SEMANTICS.md; tensorflow/core/kernels/rnn/lstm_ops.cc).

Dropout-off parity and gradients for seq_len_max = T are the generic suites' (the entries
declare "gradients"). Not Keras: runs in the main process only.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from conformance.adapters.keras import strategies as KS
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, rounded
from conformance.core.frameworks import require
from conformance.checks.parity import max_abs_errors
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

pytestmark = pytest.mark.framework("tensorflow")

EXAMPLES = max(8, settings.default.max_examples // 2)


@pytest.mark.parametrize("name", ["tf.raw_ops.BlockLSTM", "tf.raw_ops.BlockLSTMV2"])
def test_seq_len_max(name, conformance_record):
    require("tensorflow")
    adapter = registry.load(name)
    worst = {}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.integers(2, 6), cut=st.integers(0, 5), peephole=st.booleans(),
           forget_bias=st.sampled_from([0.0, 1.0, -0.5]) if name.endswith("BlockLSTM") else st.just(0.0),
           cell_clip=st.sampled_from([None, 0.5, 3.0]), seed=st.integers(0, 2**31 - 1))
    def check(steps, cut, peephole, forget_bias, cell_clip, seed):
        n = min(cut, steps - 1)
        case = Case(cell="lstm", steps=steps, batch=2, input_size=3, hidden_size=3, peephole=peephole,
                    forget_bias=forget_bias, cell_clip=cell_clip, initial_state=True, seed=seed)
        stack, x, h0, c0 = rounded(case)
        rp = ("from conformance.adapters import registry\nfrom conformance.core.adapter_strategies import rounded\n"
              f"from conformance.core.strategies import Case\ncase = {case.short()}\nstack, x, h0, c0 = rounded(case)\n"
              f"print(registry.load({name!r}).forward(stack, x, h0, c0, seq_len_max={n}).y)")
        got = adapter.forward(stack, x, h0, c0, seq_len_max=n)
        tol = tolerance("float32", *case_shape(stack, steps))
        tail = float(np.max(np.abs(got.y[n:]), initial=0.0))
        err = 0.0
        if n:
            want = reference.run(stack, x[:n], h0, c0)
            err = max_abs_errors(reference.Result(got.y[:n], got.y[n - 1:n], None),
                                 reference.Result(want.y, want.h_n, None))["y"]
        if err / tol > worst.get("ratio", -1):
            worst.update(ratio=err / tol, err=err, tol=tol, seed=seed, repro=rp)
        assert err <= tol and tail == 0.0, (
            f"{name} with seq_len_max={n} < T={steps}: first steps differ by {err:.3g} (tolerance {tol:.3g}), "
            f"largest |h| after seq_len_max {tail:.3g} (expected zero-filled)\nseed={seed}\nrepro:\n{rp}")

    try:
        check()
    finally:
        KS.record(conformance_record, adapter=name, backend=None, feature="seq_len_max < T", framework="tensorflow",
                  distribution="tensorflow-cpu", err=worst.get("err"), tol=worst.get("tol"), seed=worst.get("seed"),
                  repro=worst.get("repro"), reason="first seq_len_max steps vs reference, later steps zero-filled")
