"""RNG-replay oracle for torch's inter-layer dropout on CPU (``nn.LSTM``/``nn.GRU(dropout=p)``).

What torch's CPU kernel does (aten ``native/RNN.cpp`` ``_rnn_impl`` and the oneDNN path in
``native/mkldnn/RNN.cpp``; ``at::dropout`` in ``native/Dropout.cpp``), each fact checked by
the suite ``suites/test_torch_dropout.py`` and the self-tests ``tests/test_torch_replay.py``
on torch 2.13.0+cpu:

- in training mode with ``0 < p < 1`` and ``num_layers > 1``, after each layer but the last,
  ``at::dropout(layer_output, p, train=True)``; on CPU that is
  ``noise = empty_like(output).bernoulli_(1 - p); noise.div_(1 - p); output * noise`` — one
  ``bernoulli_`` per layer boundary, in layer order, and no other draw from the CPU generator;
- the output it covers is time-major ``(T, B, D*Hout)`` even with ``batch_first=True`` (the
  input is transposed before the layers run); for a PackedSequence it is ``packed.data`` of
  shape ``(sum(lengths), D*Hout)``, rows in packed order (step by step, each step's rows in
  descending-length order); bidirectional outputs are dropped after concatenation;
- the scale ``1/(1-p)`` is computed in the tensor's dtype (``noise.div_(1 - p)``); for the
  rates used here float32(1)/float32(1-p) equals float32(1/(1-p)) anyway;
- the draw does not depend on the dtype: float32 and float64 tensors of the same shape get
  the same 0/1 pattern after the same seed (MKL's Bernoulli generator, one 64-bit seed
  taken from the torch generator per ``bernoulli_`` call);
- eval mode, ``p == 0`` or a single layer: no draw, no mask.

So ``torch.manual_seed(seed)`` followed by one ``torch.empty(shape, dtype).bernoulli_(1 - p)
.div_(1 - p)`` per boundary regenerates the masks exactly (`replay_inter_layer_masks`).
cuDNN (GPU) draws its masks inside cuDNN from its own cached state: not replayable here.

Also: `packed_to_padded` / `padded_to_packed` map masks (or any per-row array) between
the packed row order and the padded time-major layout (original batch order), and
`torch_stack_from_module` / `load_stack_into` move weights between a torch module and a
canonical stack (``reference.layouts``).
"""
from __future__ import annotations

import numpy as np

import reference
from reference import layouts

__all__ = [
    "replay_inter_layer_masks", "packed_layout", "packed_to_padded", "padded_to_packed",
    "torch_stack_from_module", "load_stack_into", "module_param_names",
]


def _torch():
    import torch

    return torch


def _torch_dtype(dtype):
    torch = _torch()
    if isinstance(dtype, torch.dtype):
        return dtype
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    return getattr(torch, name)


def replay_inter_layer_masks(seed, p, steps, batch, width, num_layers, dtype, packed_rows=None):
    """The already-scaled inter-layer masks torch's CPU kernel draws after ``torch.manual_seed(seed)``.

    Returns a list of ``num_layers - 1`` NumPy arrays (one per layer boundary, in order) in
    `dtype`, values 0 or 1/(1-p) computed in `dtype`: shape ``(steps, batch, width)``
    (time-major, also for ``batch_first=True`` modules) or, with ``packed_rows=N`` (the
    number of rows of ``packed.data``, i.e. sum(lengths)), ``(N, width)`` in packed row
    order (map it with `packed_to_padded`). `width` is D * Hout. p == 0 gives all ones
    without touching the generator (torch draws nothing then); p == 1 all zeros.

    Side effect, as in torch: the global CPU generator is reseeded and advanced.
    """
    torch = _torch()
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a rate in [0, 1], got {p!r}")
    if num_layers < 1:
        raise ValueError(f"num_layers: expected >= 1, got {num_layers!r}")
    tdt = _torch_dtype(dtype)
    shape = (int(steps), int(batch), int(width)) if packed_rows is None else (int(packed_rows), int(width))
    torch.manual_seed(seed)
    out = []
    for _ in range(num_layers - 1):
        if p == 0.0:
            m = torch.ones(shape, dtype=tdt)
        elif p == 1.0:
            m = torch.zeros(shape, dtype=tdt)
        else:
            m = torch.empty(shape, dtype=tdt).bernoulli_(1 - p).div_(1 - p)
        out.append(m.numpy().copy())
    return out


def packed_layout(lengths, steps=None):
    """`reference.Packed` skeleton (batch_sizes, sorted/unsorted indices) of right-padded
    sequences with `lengths` (enforce_sorted=False: stable descending sort, like torch)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    steps = int(lengths.max()) if steps is None else int(steps)
    return reference.pack(np.zeros((steps, len(lengths))), lengths)


def packed_to_padded(rows, lengths, steps=None, fill=1.0):
    """``(sum(lengths), ...)`` rows in packed order -> ``(steps, B, ...)`` time-major, original
    batch order, `fill` at padded positions (1: "not dropped"). Same semantics as
    ``reference.unpack`` / torch's ``pad_packed_sequence``."""
    rows = np.asarray(rows)
    lengths = np.asarray(lengths, dtype=np.int64)
    steps = int(lengths.max()) if steps is None else int(steps)
    skel = packed_layout(lengths, steps)
    if rows.shape[0] != int(lengths.sum()):
        raise ValueError(f"rows: expected {int(lengths.sum())} rows (sum(lengths)), got {rows.shape[0]}")
    packed = reference.Packed(data=rows, batch_sizes=skel.batch_sizes, sorted_indices=skel.sorted_indices,
                              unsorted_indices=skel.unsorted_indices)
    padded, got_lengths = reference.unpack(packed, total_length=steps, padding_value=fill)
    assert np.array_equal(got_lengths, lengths), (got_lengths, lengths)
    return padded


def padded_to_packed(padded, lengths):
    """``(T, B, ...)`` time-major (original batch order) -> ``(sum(lengths), ...)`` packed rows;
    the inverse of `packed_to_padded` on the valid positions."""
    return reference.pack(np.asarray(padded), np.asarray(lengths, dtype=np.int64)).data


# ---------------------------------------------------------------- weights

def _module_shape(module):
    torch = _torch()
    cell = "lstm" if isinstance(module, torch.nn.LSTM) else "gru" if isinstance(module, torch.nn.GRU) else None
    if cell is None:
        raise ValueError(f"module: expected torch.nn.LSTM or torch.nn.GRU, got {type(module).__name__}")
    return cell, module.num_layers, 2 if module.bidirectional else 1


def module_param_names(module):
    """[[{canonical-converter key: torch parameter name}] per direction] per layer."""
    cell, L, D = _module_shape(module)
    keys = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
    if cell == "lstm" and module.proj_size > 0:
        keys.append("weight_hr")
    return [[{k: k + layouts.torch_suffix(l, d == 1) for k in keys} for d in range(D)] for l in range(L)]


def torch_stack_from_module(module, grads=False):
    """Canonical stack (list of layers of list of directions) of `module`'s weights, float64
    NumPy copies. ``grads=True`` converts the parameters' ``.grad`` instead (the converters
    are linear and fold nothing, so gradients map like weights); a missing grad raises."""
    cell, _, _ = _module_shape(module)
    convert = layouts.from_torch_lstm if cell == "lstm" else layouts.from_torch_gru
    params = dict(module.named_parameters())
    stack = []
    for row in module_param_names(module):
        layer = []
        for names in row:
            arrays = {}
            for key, name in names.items():
                t = params[name].grad if grads else params[name]
                if t is None:
                    raise ValueError(f"module.{name}: no gradient (run backward first)")
                arrays[key] = t.detach().cpu().double().numpy().copy()
            layer.append(convert(**arrays))
        stack.append(layer)
    return stack


def load_stack_into(module, stack):
    """Copy a canonical `stack` into `module`'s parameters (cast to their dtype and device);
    the parameter names must match exactly."""
    torch = _torch()
    cell, L, D = _module_shape(module)
    convert = layouts.to_torch_lstm if cell == "lstm" else layouts.to_torch_gru
    if len(stack) != L or any(len(layer) != D for layer in stack):
        raise ValueError(f"stack: expected {L} layers of {D} directions for this module")
    params = dict(module.named_parameters())
    given = {}
    for l, layer in enumerate(stack):
        for d, w in enumerate(layer):
            for k, v in convert(w, bias=module.bias).items():
                given[k + layouts.torch_suffix(l, d == 1)] = v
    if set(given) != set(params):
        raise ValueError(f"stack: parameter names differ from the module's: {sorted(set(given) ^ set(params))}")
    with torch.no_grad():
        for k, v in given.items():
            params[k].copy_(torch.from_numpy(np.ascontiguousarray(v)).to(params[k].dtype))
    return module


# ---------------------------------------------------------------- running a module

def torch_vjp(module, x, h0=None, c0=None, dy=None, dh_n=None, dc_n=None, *, lengths=None,
              padding_value=0.0, seed=None, x_hook=None):
    """Forward and backward of `module` (in whatever mode it is in) on NumPy inputs.

    x is time-major (T, B, I) whatever ``module.batch_first`` says (it is transposed for the
    module); with `lengths` the input goes in as ``pack_padded_sequence(...,
    enforce_sorted=False)`` and comes out through ``pad_packed_sequence(padding_value=...,
    total_length=T)``. ``torch.manual_seed(seed)`` is called right before the module runs
    (after packing). `x_hook(x_tensor_or_packed)` may transform the module's input (user
    dropout). The loss is sum(dy*y) + sum(dh_n*h_n) + sum(dc_n*c_n) (zeros where None).

    Returns (reference.Result, reference.Grads) in float64, time-major, canonical layout:
    y (T, B, D*Hout) with torch's values at padded positions (padding_value), and gradients
    w.r.t. x (T, B, I), h0, c0 and every weight (`torch_stack_from_module(grads=True)`).
    """
    torch = _torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    cell, L, D = _module_shape(module)
    p0 = next(module.parameters())
    tdt, dev = p0.dtype, p0.device
    T, B, _ = np.shape(x)
    hout = module.proj_size if cell == "lstm" and module.proj_size > 0 else module.hidden_size
    H = module.hidden_size
    zeros = lambda *s: np.zeros(s)  # noqa: E731
    h0 = zeros(L * D, B, hout) if h0 is None else h0
    c0 = zeros(L * D, B, H) if c0 is None and cell == "lstm" else c0
    leaf = lambda a: torch.tensor(np.asarray(a, np.float64), dtype=tdt, device=dev, requires_grad=True)  # noqa: E731
    xt, h0t = leaf(x), leaf(h0)
    c0t = leaf(c0) if cell == "lstm" else None
    module.zero_grad(set_to_none=True)
    inp = xt.transpose(0, 1) if module.batch_first else xt
    if lengths is not None:
        inp = pack_padded_sequence(inp, torch.as_tensor(np.asarray(lengths, np.int64)),
                                   batch_first=module.batch_first, enforce_sorted=False)
    if x_hook is not None:
        inp = x_hook(inp)
    if seed is not None:
        torch.manual_seed(seed)
    out, state = module(inp, (h0t, c0t) if cell == "lstm" else h0t)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=module.batch_first, padding_value=padding_value,
                                     total_length=T)
    y = out.transpose(0, 1) if module.batch_first else out
    h_n, c_n = state if cell == "lstm" else (state, None)
    t = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=tdt, device=dev)  # noqa: E731
    loss = 0.0
    if dy is not None:
        loss = loss + (y * t(dy)).sum()
    if dh_n is not None:
        loss = loss + (h_n * t(dh_n)).sum()
    if dc_n is not None and c_n is not None:
        loss = loss + (c_n * t(dc_n)).sum()
    if torch.is_tensor(loss):
        loss.backward()
    n = lambda a: None if a is None else a.detach().cpu().double().numpy().copy()  # noqa: E731
    res = reference.Result(y=n(y), h_n=n(h_n), c_n=n(c_n))
    if not torch.is_tensor(loss):
        return res, None
    zero_if_none = lambda g, like: np.zeros(like.shape) if g is None else n(g)  # noqa: E731
    grads = reference.Grads(dx=zero_if_none(xt.grad, xt), dh0=zero_if_none(h0t.grad, h0t),
                            dc0=None if c0t is None else zero_if_none(c0t.grad, c0t),
                            weights=torch_stack_from_module(module, grads=True))
    return res, grads
