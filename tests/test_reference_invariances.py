"""Properties the reference must have whatever the weights: symmetries, padding, masks, packing."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import reference as ref
from conformance.core.strategies import Case, cases


def _copy_inputs(x, kwargs):
    return x.copy(), {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}


def _permute_masks(masks, perm):
    """The same masks with batch rows permuted (batch is the second-to-last axis)."""
    def p(m):
        return None if m is None else replace(m, values=np.asarray(m.values)[..., perm, :])
    layers = [[ref.LayerMasks(**{k: p(getattr(lm, k)) for k in ref.LayerMasks.KINDS}) for lm in row]
              for row in masks.layers]
    return ref.StackMasks(layers=layers, inter_layer=[p(m) for m in masks.inter_layer])


@given(case=cases(), data=st.data())
def test_permuting_batch_rows_permutes_outputs(case, data):
    note(case.short())
    stack, x, kw = case.build()
    perm = np.array(data.draw(st.permutations(range(case.batch))))
    pkw = dict(kw)
    for key in ("h0", "c0"):
        if key in kw:
            pkw[key] = kw[key][:, perm]
    if "lengths" in kw:
        pkw["lengths"] = kw["lengths"][perm]
    if "masks" in kw:
        pkw["masks"] = _permute_masks(kw["masks"], perm)
    a, b = ref.run(stack, x, **kw), ref.run(stack, x[:, perm], **pkw)
    np.testing.assert_allclose(b.y, a.y[:, perm], rtol=0, atol=1e-12, err_msg=case.short())
    np.testing.assert_allclose(b.h_n, a.h_n[:, perm], rtol=0, atol=1e-12, err_msg=case.short())


@given(case=cases(masks=False, lengths=False), extra=st.integers(1, 3), data=st.data())
def test_appended_padding_changes_nothing_valid(case, extra, data):
    """Extra padded steps (any values) leave valid outputs and final states unchanged, for every
    policy that masks (not 'compute', which by definition runs through the padding)."""
    if case.go_backwards:
        case = replace(case, go_backwards=False)  # go_backwards moves the padding to the front
    policy = data.draw(st.sampled_from(["zero_output", "repeat_output", "carry_h"]))
    lengths = np.array(data.draw(st.lists(st.integers(0, case.steps), min_size=case.batch, max_size=case.batch)))
    note(f"{case.short()} policy={policy} lengths={lengths.tolist()} extra={extra}")
    stack, x, kw = case.build()
    garbage = np.random.default_rng(case.seed).normal(size=(extra,) + x.shape[1:]) * 5
    kw = {**kw, "lengths": lengths, "padding": policy}
    short = ref.run(stack, x, **kw)
    longer = ref.run(stack, np.concatenate([x, garbage]), **kw)
    valid = ref.lengths_to_valid(lengths, case.steps)[..., None]
    np.testing.assert_allclose(np.where(valid, longer.y[:case.steps], 0), np.where(valid, short.y, 0), atol=1e-12)
    np.testing.assert_allclose(longer.h_n, short.h_n, atol=1e-12)
    if short.c_n is not None:
        np.testing.assert_allclose(longer.c_n, short.c_n, atol=1e-12)


@given(case=cases(masks=False, lengths=False, max_layers=1))
def test_padding_policies_at_padded_steps(case):
    """What each policy writes at padded steps, checked step by step (forward direction)."""
    case = replace(case, bidirectional=False, reverse=False, go_backwards=False, steps=max(case.steps, 2))
    stack, x, kw = case.build()
    lengths = np.arange(case.batch) % case.steps  # includes 0 and short sequences
    valid = ref.lengths_to_valid(lengths, case.steps)
    full = ref.run(stack, x, **kw)
    h0 = kw.get("h0", np.zeros_like(full.h_n))[0]
    for policy in ref.POLICIES:
        r = ref.run(stack, x, **{**kw, "lengths": lengths, "padding": policy})
        for b, n in enumerate(lengths):
            np.testing.assert_allclose(r.y[:n, b], full.y[:n, b], atol=1e-12)  # valid prefix = unpadded run
            last_out = full.y[n - 1, b] if n else np.zeros_like(h0[b])
            last_h = full.y[n - 1, b] if n else h0[b]
            expected = {"zero_output": np.zeros_like(h0[b]), "repeat_output": last_out, "carry_h": last_h}
            if policy == "compute":
                np.testing.assert_allclose(r.y[:, b], full.y[:, b], atol=1e-12)
                continue
            np.testing.assert_allclose(r.y[n:, b], np.broadcast_to(expected[policy], r.y[n:, b].shape), atol=1e-12,
                                       err_msg=f"policy {policy}, row {b}, length {n}")
            np.testing.assert_allclose(r.h_n[0, b], last_h, atol=1e-12)
    assert valid.shape == (case.steps, case.batch)


@given(case=cases(masks=False, lengths=False, max_layers=1), data=st.data())
def test_reverse_equals_forward_on_each_sequence_reversed_within_its_length(case, data):
    case = replace(case, bidirectional=False, go_backwards=False, reverse=False)
    stack, x, kw = case.build()
    lengths = np.array(data.draw(st.lists(st.integers(1, case.steps), min_size=case.batch, max_size=case.batch)))
    rev = ref.run(stack, x, **{**kw, "lengths": lengths, "reverse": True})
    for b, n in enumerate(lengths):
        one = {k: v[:, b:b + 1] for k, v in kw.items() if k in ("h0", "c0")}
        fwd = ref.run(stack, x[:n, b:b + 1][::-1], **one)
        np.testing.assert_allclose(rev.y[:n, b], fwd.y[::-1, 0], atol=1e-12)
        np.testing.assert_allclose(rev.h_n[:, b], fwd.h_n[:, 0], atol=1e-12)


@given(case=cases(lengths=False, max_layers=1))
def test_go_backwards_is_forward_on_the_flipped_sequence(case):
    case = replace(case, bidirectional=False, reverse=False, go_backwards=False, mask_time="sequence")
    stack, x, kw = case.build()
    a = ref.run(stack, x, go_backwards=True, **{k: v for k, v in kw.items() if k != "go_backwards"})
    b = ref.run(stack, x[::-1].copy(), **{k: v for k, v in kw.items() if k != "go_backwards"})
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.h_n, b.h_n)


@given(case=cases(masks=False))
def test_all_ones_masks_equal_no_dropout(case):
    stack, x, kw = case.build()

    def ones_like_layer(w):  # the sampler draws no mask at rate 0, so build all-ones masks by hand
        g = len(w.gates)
        T, B = case.steps, case.batch
        M = ref.Mask
        return ref.LayerMasks(
            input=M(np.ones((T, g, B, w.input_size)), time="step", per_gate=True),
            recurrent=M(np.ones((T, g, B, w.output_size)), time="step", per_gate=True),
            output=M(np.ones((B, w.output_size))), state_h=M(np.ones((B, w.output_size))),
            state_c=M(np.ones((B, w.hidden_size))) if w.cell == "lstm" else None)
    masks = ref.StackMasks(layers=[[ones_like_layer(w) for w in row] for row in stack],
                           inter_layer=[ref.Mask(np.ones((case.batch, len(row) * row[0].output_size)))
                                        for row in stack[:-1]])
    a, b = ref.run(stack, x, **kw), ref.run(stack, x, masks=masks, **kw)
    np.testing.assert_allclose(b.y, a.y, rtol=0, atol=1e-14)
    np.testing.assert_allclose(b.h_n, a.h_n, rtol=0, atol=1e-14)


@given(case=cases(masks=False))
def test_per_sequence_mask_equals_per_step_mask_repeated(case):
    stack, x, kw = case.build()
    seq = ref.MaskSampler(case.seed).stack_masks(stack, case.batch, time="sequence", per_gate=False, input=0.3,
                                                 recurrent=0.4, output=0.2, state_h=0.1,
                                                 inter_layer=0.5, inter_layer_time="sequence")

    def stepwise(m):
        return None if m is None else m.per_step(case.steps)
    step = ref.StackMasks(
        layers=[[ref.LayerMasks(**{k: stepwise(getattr(lm, k)) for k in ref.LayerMasks.KINDS}) for lm in row]
                for row in seq.layers],
        inter_layer=[stepwise(m) for m in seq.inter_layer])
    a, b = ref.run(stack, x, masks=seq, **kw), ref.run(stack, x, masks=step, **kw)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.h_n, b.h_n)


@given(case=cases(masks=False))
def test_identical_per_gate_masks_equal_one_shared_mask(case):
    stack, x, kw = case.build()
    rng = np.random.default_rng(case.seed)
    w = stack[0][0]
    shared_in = ref.keep_values(rng, 0.5, (case.batch, w.input_size))
    shared_rec = ref.keep_values(rng, 0.5, (case.batch, w.output_size))
    g = len(w.gates)
    shared = ref.LayerMasks(input=ref.Mask(shared_in), recurrent=ref.Mask(shared_rec))
    per_gate = ref.LayerMasks(input=ref.Mask(np.stack([shared_in] * g), per_gate=True),
                              recurrent=ref.Mask(np.stack([shared_rec] * g), per_gate=True))
    one = [row[:1] for row in stack[:1]]
    kw1 = {k: (v[:1] if k in ("h0", "c0") else v) for k, v in kw.items()}
    a, b = ref.run(one, x, masks=shared, **kw1), ref.run(one, x, masks=per_gate, **kw1)
    np.testing.assert_allclose(a.y, b.y, rtol=0, atol=1e-13)


def test_inputs_are_never_modified():
    case = Case(cell="lstm", steps=4, batch=2, input_size=3, hidden_size=1, num_layers=2, bidirectional=True,
                peephole=True, proj_size=1, cell_clip=3.0, forget_bias=1.0, lengths=(4, 2),
                rates={"input": 0.5, "recurrent": 0.5}, per_gate=True, mask_time="step", inter_layer=0.5)
    stack, x, kw = case.build()
    before = [[{n: getattr(w, n).copy() for n in w.array_names()} for w in row] for row in stack]
    x0, kw0 = _copy_inputs(x, kw)
    ref.run(stack, x, **kw)
    ref.run_vjp(stack, x, np.ones((4, 2, 2)), **kw)
    for row, saved in zip(stack, before):
        for w, arrays in zip(row, saved):
            for n, a in arrays.items():
                np.testing.assert_array_equal(getattr(w, n), a, err_msg=n)
    np.testing.assert_array_equal(x, x0)
    for k in ("h0", "c0", "lengths"):
        np.testing.assert_array_equal(kw[k], kw0[k])


@given(steps=st.integers(1, 6), batch=st.integers(1, 5), feat=st.integers(1, 3), data=st.data(),
       enforce=st.booleans())
def test_pack_unpack_round_trip(steps, batch, feat, data, enforce):
    lengths = np.array(data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch)))
    if enforce:
        lengths = np.sort(lengths)[::-1]
    x = np.random.default_rng(0).normal(size=(steps, batch, feat))
    packed = ref.pack(x, lengths, enforce_sorted=enforce)
    assert packed.data.shape == (lengths.sum(), feat)
    assert list(packed.batch_sizes) == [int((lengths > t).sum()) for t in range(lengths.max())]
    out, got_lengths = ref.unpack(packed, total_length=steps, padding_value=-7.0)
    valid = ref.lengths_to_valid(lengths, steps)[..., None]
    np.testing.assert_array_equal(np.where(valid, out, 0), np.where(valid, x, 0))
    assert np.all(out[~np.broadcast_to(valid, out.shape)] == -7.0)
    np.testing.assert_array_equal(got_lengths, lengths)
    np.testing.assert_array_equal(packed.sorted_indices[packed.unsorted_indices], np.arange(batch))


def test_sampler_rate_zero_is_all_ones_and_rate_one_all_zeros():
    s = ref.MaskSampler(0)
    assert np.all(s.mask(0.0, 3, 4).values == 1.0)
    assert np.all(s.mask(1.0, 3, 4).values == 0.0)
    m = s.mask(0.25, 50, 40, steps=3, time="step", gates=4)
    assert m.values.shape == (3, 4, 50, 40) and m.per_gate and m.time == "step"
    assert set(np.unique(m.values)) <= {0.0, 1 / 0.75}


def test_sampler_is_reproducible_and_seed_dependent():
    a = ref.MaskSampler(5).mask(0.5, 8, 8).values
    assert np.array_equal(a, ref.MaskSampler(5).mask(0.5, 8, 8).values)
    assert not np.array_equal(a, ref.MaskSampler(6).mask(0.5, 8, 8).values)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_on_request(dtype):
    stack, x, kw = Case(cell="gru").build()
    r = ref.run(stack, x, dtype=dtype, **kw)
    assert r.y.dtype == dtype and r.h_n.dtype == dtype
    r64 = ref.run(stack, x, **kw)
    np.testing.assert_allclose(r.y, r64.y, atol=1e-6)
