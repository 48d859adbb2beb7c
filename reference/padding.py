"""Variable lengths: step masks, padding policies and the packed layout.

A step mask `valid` (T, B) says which steps of each sequence are real. Lengths give
right padding (`valid[t, b] = t < lengths[b]`); any boolean mask is accepted, so leading
masked steps (Keras ``go_backwards`` on right-padded input) can be expressed too.

Padding policies, i.e. what a layer does at a step whose `valid` is False:
    zero_output    state carried unchanged, output 0                  (torch packed, Keras
                   zero_output_for_mask=True, ONNX Runtime sequence_lens)
    repeat_output  state carried, output = the previous output, zeros before the first
                   valid step                                          (Keras TF backend masking)
    carry_h        state carried, output = the carried h (h0 before the first valid step)
    compute        no masking at all: the step is computed like any other (padding fed
                   through; the final state is the state after step T)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_choice

POLICIES = ("zero_output", "repeat_output", "carry_h", "compute")


def check_lengths(lengths, steps, batch, name="lengths"):
    """Integer lengths (B,) in [0, steps]; ValueError otherwise."""
    arr = np.asarray(lengths)
    if arr.dtype == object or arr.ndim != 1 or arr.shape[0] != batch:
        raise ValueError(f"{name}: expected shape ({batch},) of integers, got {getattr(arr, 'shape', arr)}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name}: expected integers, got {arr.tolist()}")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if np.any(arr < 0) or np.any(arr > steps):
        raise ValueError(f"{name}: expected values in [0, {steps}], got {arr.tolist()}")
    return arr


def lengths_to_valid(lengths, steps):
    """(T, B) boolean: t < lengths[b]."""
    return np.arange(steps)[:, None] < np.asarray(lengths)[None, :]


def check_step_mask(step_mask, steps, batch, name="step_mask"):
    arr = np.asarray(step_mask)
    if arr.shape != (steps, batch):
        raise ValueError(f"{name}: expected shape ({steps}, {batch}), got {arr.shape}")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{name}: expected booleans (or 0/1), got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return arr


def check_policy(padding):
    return check_choice("padding", padding, POLICIES)


@dataclass(frozen=True)
class Packed:
    """torch-style packed layout of a (T, B, ...) array.

    data           (sum(lengths), ...) rows in packed order: step by step, each step's
                   rows in sorted (descending length) order
    batch_sizes    (T_max,) number of sequences still running at each step
    sorted_indices    sorted position -> original batch row
    unsorted_indices  original batch row -> sorted position
    """

    data: np.ndarray
    batch_sizes: np.ndarray
    sorted_indices: np.ndarray
    unsorted_indices: np.ndarray


def pack(x, lengths, enforce_sorted=False):
    """Pack time-major `x` (T, B, ...) with `lengths` (B,), like torch.nn.utils.rnn.pack_padded_sequence.

    Sorting is stable by descending length (ties keep the original order). With
    enforce_sorted=True the lengths must already be non-increasing and no sort happens.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x: expected at least 2 dims (T, B, ...), got shape {x.shape}")
    steps, batch = x.shape[:2]
    lengths = check_lengths(lengths, steps, batch)
    if np.any(lengths == 0):
        raise ValueError(f"lengths: packing needs every length >= 1, got {lengths.tolist()}")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ValueError(f"lengths: enforce_sorted=True needs non-increasing lengths, got {lengths.tolist()}")
        order = np.arange(batch)
    else:
        order = np.argsort(-lengths, kind="stable")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(batch)
    sorted_len = lengths[order]
    t_max = int(sorted_len[0])
    batch_sizes = np.array([(sorted_len > t).sum() for t in range(t_max)], dtype=np.int64)
    data = np.concatenate([x[t, order[:n]] for t, n in enumerate(batch_sizes)], axis=0)
    return Packed(data=data, batch_sizes=batch_sizes, sorted_indices=order, unsorted_indices=inverse)


def unpack(packed, total_length=None, padding_value=0.0):
    """Inverse of `pack`: (T, B, ...) in the original batch order, padding_value at padded steps.

    Returns (padded, lengths)."""
    bs = np.asarray(packed.batch_sizes)
    steps = len(bs) if total_length is None else int(total_length)
    if steps < len(bs):
        raise ValueError(f"total_length: expected at least {len(bs)}, got {total_length}")
    batch = int(bs[0])
    data = np.asarray(packed.data)
    out = np.full((steps, batch) + data.shape[1:], padding_value, dtype=data.dtype)
    start = 0
    for t, n in enumerate(bs):
        out[t, packed.sorted_indices[:n]] = data[start:start + n]
        start += n
    lengths = (bs[None, :] > np.arange(batch)[:, None]).sum(axis=1)[packed.unsorted_indices]
    return out, lengths

