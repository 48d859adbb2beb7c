"""Self-tests of the RNG-replay oracle `conformance.adapters.torch.replay`.

- packed <-> padded mapping: round trips, agrees with torch's own pack/pad, 1 at padded positions;
- the replayed masks equal what ``F.dropout`` (the ``at::dropout`` torch's RNN kernel calls) draws
  after the same seed, in both dtypes, padded and packed shapes, one draw per boundary in order;
- weights: ``load_stack_into`` / ``torch_stack_from_module`` round-trip bitwise;
- meta-test: a deliberately wrong replay (seed + 1, or the padded masks for packed input) is
  detected by the suite's parity check, with the "upgrade finding" message.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from conformance.core.frameworks import require
from conformance.adapters.torch import replay as oracle


@st.composite
def lengths_cases(draw):
    T = draw(st.integers(1, 6))
    B = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    return T, np.array(lengths), draw(st.integers(1, 4))


@settings(deadline=None)
@given(case=lengths_cases(), seed=st.integers(0, 2**32 - 1))
def test_packed_padded_round_trip(case, seed):
    T, lengths, W = case
    rng = np.random.default_rng(seed)
    N = int(lengths.sum())
    rows = rng.normal(size=(N, W))
    padded = oracle.packed_to_padded(rows, lengths, T)
    valid = reference.lengths_to_valid(lengths, T)
    assert padded.shape == (T, len(lengths), W)
    assert np.all(padded[~valid] == 1.0)  # padded positions: "not dropped"
    assert np.array_equal(oracle.padded_to_packed(padded, lengths), rows)
    grid = rng.normal(size=(T, len(lengths), W))
    back = oracle.packed_to_padded(oracle.padded_to_packed(grid, lengths), lengths, T)
    assert np.array_equal(back[valid], grid[valid])


@settings(deadline=None, max_examples=20)
@given(case=lengths_cases())
def test_mapping_agrees_with_torch_pack(case):
    """The row of packed.data holding (t, b) is where the mapping puts (t, b) (original batch order)."""
    torch = require("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, lengths, W = case
    B = len(lengths)
    ids = np.arange(T * B * W, dtype=np.float64).reshape(T, B, W)
    ps = pack_padded_sequence(torch.from_numpy(ids), torch.as_tensor(lengths), enforce_sorted=False)
    assert np.array_equal(ps.data.numpy(), oracle.padded_to_packed(ids, lengths))
    pad, _ = pad_packed_sequence(ps, padding_value=1.0, total_length=T)
    assert np.array_equal(pad.numpy(), oracle.packed_to_padded(ps.data.numpy(), lengths, T))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_replay_equals_f_dropout(p, dtype):
    """torch.manual_seed(s), then F.dropout on tensors of the boundary shape, once per boundary."""
    torch = require("torch")
    tdt = getattr(torch, dtype)
    for shape, kw in (((5, 3, 4), {}), ((9, 4), {"packed_rows": 9})):
        seed = 1234
        masks = oracle.replay_inter_layer_masks(seed, p, 5, 3, 4, 3, dtype, **kw)
        assert len(masks) == 2 and all(m.dtype == np.dtype(dtype) and m.shape == shape for m in masks)
        torch.manual_seed(seed)
        drawn = [torch.nn.functional.dropout(torch.ones(shape, dtype=tdt), p, training=True).numpy()
                 for _ in range(2)]
        for m, d in zip(masks, drawn):
            assert np.array_equal(m, d)
            scale = (torch.ones((), dtype=tdt) / (1 - p)).item()
            assert set(np.unique(m)).issubset({0.0, scale})
        assert not np.array_equal(masks[0], masks[1])  # fresh draw per boundary


def test_replay_independent_of_dtype():
    """Same 0/1 pattern for float32 and float64 after the same seed (documented in the oracle)."""
    require("torch")
    a = oracle.replay_inter_layer_masks(7, 0.5, 6, 4, 5, 3, "float32")
    b = oracle.replay_inter_layer_masks(7, 0.5, 6, 4, 5, 3, "float64")
    assert all(np.array_equal(x != 0, y != 0) for x, y in zip(a, b))


def test_replay_edge_rates():
    require("torch")
    assert all(np.all(m == 1) for m in oracle.replay_inter_layer_masks(0, 0.0, 2, 2, 2, 3, "float64"))
    assert all(np.all(m == 0) for m in oracle.replay_inter_layer_masks(0, 1.0, 2, 2, 2, 3, "float64"))
    assert oracle.replay_inter_layer_masks(0, 0.5, 2, 2, 2, 1, "float64") == []
    with pytest.raises(ValueError, match="p"):
        oracle.replay_inter_layer_masks(0, 1.5, 2, 2, 2, 2, "float64")
    with pytest.raises(ValueError, match="dtype"):
        oracle.replay_inter_layer_masks(0, 0.5, 2, 2, 2, 2, "int32")


@pytest.mark.parametrize("cell, kw", [("lstm", {}), ("lstm", {"proj_size": 2}), ("gru", {})])
def test_weights_round_trip(cell, kw):
    torch = require("torch")
    rng = np.random.default_rng(3)
    stack = reference.random_stack(rng, cell, 3, 4, 2, True, **kw)
    Mod = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    m = Mod(3, 4, num_layers=2, bidirectional=True, **({"proj_size": kw.get("proj_size", 0)} if cell == "lstm" else {}))
    m = oracle.load_stack_into(m.double(), stack)
    back = oracle.torch_stack_from_module(m)
    for la, lb in zip(stack, back):
        for a, b in zip(la, lb):
            for name in a.array_names():
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
    with pytest.raises(ValueError, match="stack"):
        oracle.load_stack_into(m, stack[:1])


def _suite():
    import importlib
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("suites.test_torch_dropout")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("packed", [False, True])
def test_wrong_replay_is_detected(packed, dtype):
    """Meta-test: the parity check passes with the right seed and fails, naming the upgrade finding,
    with masks replayed from seed + 1 (dropout-off parity still holds)."""
    require("torch")
    S = _suite()
    case = S.DropCase(cell="lstm", dtype=dtype, steps=4, batch=3, input_size=3, hidden_size=4, num_layers=2,
                      bidirectional=True, p=0.5, lengths=(2, 4, 1) if packed else None, seed=99)
    ok, ratio, *_ = S.check_replay(case)
    assert ok and ratio < 0.1
    ok, ratio, err, tol, msg = S.check_replay(case, mask_seed=case.seed + 1)
    assert not ok and err > 100 * tol, (err, tol)
    assert "no longer matches RNG replay" in msg and "upgrade finding" in msg
    assert "seed=99" in msg and "check_replay(DropCase(" in msg


def test_padded_replay_for_packed_input_is_detected():
    """Replaying the padded shape for a packed run (the seed-002 confusion) fails the parity check."""
    require("torch")
    S = _suite()
    case = S.DropCase(cell="gru", dtype="float64", steps=5, batch=3, input_size=2, hidden_size=3, num_layers=2,
                      p=0.5, lengths=(5, 1, 3), seed=5)
    r = S.run_case(case)
    assert max(r["errs"].values()) <= r["tol"]
    from dataclasses import replace

    class Padded(S.DropCase):
        def replayed(self, seed=None):
            return replace(case, lengths=None).replayed(seed)

    wrong = Padded(**{k: getattr(case, k) for k in case.__dataclass_fields__})
    r = S.run_case(wrong)
    assert max(r["errs"].values()) > 1e3 * r["tol"]


def test_batch_major_replay_is_detected():
    """With batch_first=True the mask is still drawn time-major: a batch-major draw (B, T, W),
    transposed to (T, B, W), does not match."""
    require("torch")
    S = _suite()
    case = S.DropCase(cell="lstm", dtype="float64", steps=4, batch=3, input_size=2, hidden_size=3, num_layers=2,
                      batch_first=True, p=0.5, seed=11)
    assert S.check_replay(case)[0]

    class BatchMajor(S.DropCase):
        def replayed(self, seed=None):
            ms = oracle.replay_inter_layer_masks(self.seed, self.p, self.batch, self.steps, self.width,
                                                 self.num_layers, self.dtype)
            return [m.transpose(1, 0, 2).astype(np.float64) for m in ms]

    wrong = BatchMajor(**{k: getattr(case, k) for k in case.__dataclass_fields__})
    r = S.run_case(wrong)
    assert max(r["errs"].values()) > 1e3 * r["tol"]
