"""The vocabulary of dropout semantics: the property names and values a fingerprint reports
(`conformance.oracles.fingerprint`), which an adapter or an expectation file declares in the
same words, and the checks of a declaration against that vocabulary.

A fingerprint is a table ``{property: value}``:

    tensor properties   one per tensor a dropout knob can mask (`TENSORS`): "none", or
                        "unknown (<tensor> masked)" where another mask hides the probe's
                        readout, or comma-separated parts, in this order (those that apply):
                        time "per sequence" / "per step" (not for state_h, state_c),
                        gates "gates shared" / "per gate" (input, recurrent),
                        rows "rows independent" / "rows shared",
                        kept "kept value 1/(1-p)" / "kept value 1 (unscaled)" /
                        "kept value 1/p" / "kept value other"
    evaluation mode     "nothing dropped" / "DROPS"
    seeds               "same seed same masks" / "same seed DIFFERENT masks", then
                        "; other seed other masks" / "; other seed SAME masks"
    inference call      "does not advance the random state" / "advances the random state"
    padded steps        the reference padding policies the path matches, " / "-joined
                        (reference.POLICIES), "none of the reference policies", or
                        "no lengths input"

Tensors: input (x_t as each gate sees it), recurrent (h_{t-1} as each gate sees it),
recurrent_c (the carried cell state c_{t-1}, LSTM), inter_layer (a layer's input from the
layer below), output (y_t), state_h / state_c (the returned final states).
"""
from __future__ import annotations

from reference import POLICIES

TENSORS = ("input", "recurrent", "recurrent_c", "inter_layer", "output", "state_h", "state_c")
LSTM_ONLY_TENSORS = ("recurrent_c", "state_c")
MODES = ("evaluation mode", "seeds", "inference call")
PADDED = "padded steps"
PROPERTIES = TENSORS + MODES + (PADDED,)

TIME = ("per sequence", "per step")
GATES = ("gates shared", "per gate")
ROWS = ("rows independent", "rows shared")
KEPT = ("kept value 1/(1-p)", "kept value 1 (unscaled)", "kept value 1/p", "kept value other")
MODE_VALUES = {
    "evaluation mode": ("nothing dropped", "DROPS"),
    "seeds": tuple(f"{a}; {b}" for a in ("same seed same masks", "same seed DIFFERENT masks")
                   for b in ("other seed other masks", "other seed SAME masks")),
    "inference call": ("does not advance the random state", "advances the random state"),
}
PART_KINDS = (("time", TIME), ("gates", GATES), ("rows", ROWS), ("kept", KEPT))


def masked_tensors(properties):
    """The tensors a fingerprint or a declaration ({property: value}) says are masked."""
    return {t for t, v in dict(properties).items() if t in TENSORS and is_masked(v)}


def parts(value):
    """{kind: part} of a tensor property value ("per sequence, rows independent, ..."), {} for
    "none" and "unknown (...)"."""
    out = {}
    if value == "none" or value.startswith("unknown ("):
        return out
    for part in (p.strip() for p in value.split(",")):
        kind = next((k for k, vocab in PART_KINDS if part in vocab), None)
        if kind is None:
            raise ValueError(f"{part!r} is not a tensor property part; the parts are "
                             + "; ".join(" / ".join(v) for _, v in PART_KINDS))
        out[kind] = part
    return out


def is_masked(value):
    """A tensor property value that says the tensor is masked."""
    return value not in (None, "none") and not value.startswith("unknown (")


def check_value(prop, value):
    """ValueError naming the property unless `value` is in the vocabulary for `prop`."""
    if not isinstance(value, str):
        raise ValueError(f"{prop}: expected a string, got {value!r}")
    if prop in TENSORS:
        if value == "none" or (value.startswith("unknown (") and value.endswith(" masked)")):
            return
        try:
            got = parts(value)
        except ValueError as e:
            raise ValueError(f"{prop}: {e}") from None
        if "kept" not in got or "rows" not in got:
            raise ValueError(f"{prop}: {value!r} names no rows / kept value part (e.g. 'rows independent, "
                             "kept value 1/(1-p)'), nor is it 'none'")
        return
    if prop in MODE_VALUES:
        if value not in MODE_VALUES[prop]:
            raise ValueError(f"{prop}: expected one of {list(MODE_VALUES[prop])}, got {value!r}")
        return
    if prop == PADDED:
        if value in ("no lengths input", "none of the reference policies"):
            return
        bad = [p for p in value.split(" / ") if p not in POLICIES]
        if bad:
            raise ValueError(f"{PADDED}: {bad} not among the reference policies {list(POLICIES)} "
                             "(' / '-joined), 'no lengths input' or 'none of the reference policies'")
        return
    raise ValueError(f"unknown property {prop!r}; the properties are {list(PROPERTIES)}")


def check_declaration(properties, cell=None, where="semantics"):
    """The declared {property: value} table, checked; ValueError naming `where` and the property."""
    if not isinstance(properties, dict) or not properties:
        raise ValueError(f"{where}: expected a non-empty table {{property: value}}, got {properties!r}")
    for prop, value in properties.items():
        if cell == "gru" and prop in LSTM_ONLY_TENSORS:
            raise ValueError(f"{where}: {prop!r} is an LSTM tensor; the cell is a GRU")
        try:
            check_value(prop, value)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    return dict(properties)


def difference(prop, measured, declared):
    """One line naming how a measured property differs from the declared one, part by part for
    tensors ("input: per step instead of per sequence")."""
    if prop in TENSORS and is_masked(measured) and is_masked(declared):
        try:
            got, want = parts(measured), parts(declared)
        except ValueError:
            got = want = None
        if got is not None:
            diffs = [f"{got.get(k, '?')} instead of {want[k]}" for k, _ in PART_KINDS
                     if k in want and got.get(k) != want[k]]
            if diffs:
                return f"{prop}: " + "; ".join(diffs)
    if prop in TENSORS and not is_masked(declared) and is_masked(measured):
        return f"{prop}: masked ({measured}), declared {declared!r}"
    if prop in TENSORS and is_masked(declared) and not is_masked(measured):
        return f"{prop}: {measured!r}, declared masked ({declared})"
    return f"{prop}: measured {measured!r}, declared {declared!r}"
