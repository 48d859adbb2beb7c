"""Meta-tests of suites/test_keras_mask_time.py's helpers (no framework needed)."""
import numpy as np

from suites.test_keras_mask_time import B, F, T, structure, visible_weights


def test_structure_tells_per_sequence_from_per_step():
    rng = np.random.default_rng(0)
    per_sequence = np.broadcast_to(rng.random((B, 1, F)) < 0.5, (B, T, F))
    per_step = rng.random((B, T, F)) < 0.5
    assert structure(per_sequence) == "per sequence"
    assert structure(per_step) == "per step"
    one_changed = per_sequence.copy()
    one_changed[0, T - 1, 0] ^= True
    assert structure(one_changed) == "per step"


def test_visible_weights_shapes_match_keras():
    k, r, b = visible_weights("lstm")
    assert k.shape == r.shape == (F, 4 * F) and b.shape == (4 * F,)
    k, r, b = visible_weights("gru")
    assert k.shape == r.shape == (F, 3 * F) and b.shape == (2, 3 * F)
    assert (k[:, 2 * F:] == 2 * np.eye(F)).all() and not r.any()
