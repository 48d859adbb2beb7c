"""Bench builders for the torch paths (see conformance/core/bench.py for timing and cases)."""
from __future__ import annotations

import contextlib

import numpy as np

from conformance.core.bench import SIZES, Bench, P, rng_arrays, float64_gemm_floor, single_thread

# ------------------------------------------------------------------ torch

def torch_nn(info, size):
    """nn.LSTM / nn.GRU: built once, train() mode (dropout active where set), float32."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, B, H = SIZES[size]
    torch.manual_seed(0)
    cls = torch.nn.LSTM if info.cell == "lstm" else torch.nn.GRU
    x_np, dy_np = rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = torch.from_numpy(x_np), torch.from_numpy(dy_np)
    xg = x.clone().requires_grad_(True)
    # all rows full but the last, one step short: the same work as padded within 1/(T*B), and
    # unequal lengths, so the packed call leaves oneDNN for the native kernel as real batches do
    lengths = torch.full((B,), T, dtype=torch.int64)
    lengths[-1] = T - 1

    def module(**kw):
        return cls(H, H, **kw).train()

    def call(m, inp, drop_in=False, packed=None, mkldnn=True):
        if drop_in:
            inp = F.dropout(inp, P, training=True)
        if packed is not None:
            inp = pack_padded_sequence(inp, lengths, enforce_sorted=packed == "sorted")
        with torch.backends.mkldnn.flags(enabled=mkldnn):
            out = m(inp)[0]
        if packed is not None:
            out = pad_packed_sequence(out, total_length=T)[0]
        return out

    def fwd(m, **kw):
        def f():
            with torch.no_grad():
                call(m, x, **kw)
        return f

    def fb(m, **kw):
        def f():
            m.zero_grad(set_to_none=True)
            xg.grad = None
            call(m, xg, **kw).backward(dy)
        return f

    b = Bench(info.name, size, T, B, H, threads="torch 1, BLAS 1",
              context=lambda: single_thread(torch), version=torch.__version__)
    m1, m2, m2d = module(), module(num_layers=2), module(num_layers=2, dropout=P)
    from conformance.adapters.torch.common import kernel_ran

    with torch.no_grad():
        packed_kernel = kernel_ran(lambda: call(m1, x, packed="unsorted"))[1]
        padded_kernel = kernel_ran(lambda: call(m1, x))[1]
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        base = (mode, "off", 1, "")
        b.add(mode, "off", mk(m1), note=f"kernel {padded_kernel}")
        b.add(mode, "input", mk(m1, drop_in=True), note="F.dropout(x) before the module",
              against=base, comparison="input dropout vs off")
        b.add(mode, "off", mk(m2), layers=2)
        b.add(mode, "inter-layer", mk(m2d), layers=2, note=f"nn.{cls.__name__}(num_layers=2, dropout={P})",
              against=(mode, "off", 2, ""), comparison="inter-layer dropout vs off (2 layers)")
        # the kernels behind the same call (dropout off)
        for packed in ("unsorted", "sorted"):
            b.add(mode, "off", mk(m1, packed=packed), variant=f"packed,enforce_sorted={packed == 'sorted'}",
                  note=f"lengths T except one row T-1; pack/unpack included; kernel {packed_kernel}",
                  against=base, comparison=f"packed (enforce_sorted={packed == 'sorted'}) vs padded")
        if info.cell == "lstm":
            b.add(mode, "off", mk(m1, mkldnn=False), variant="native (mkldnn off)",
                  note="torch.backends.mkldnn.flags(enabled=False)",
                  against=base, comparison="native vs oneDNN")
            b.add(mode, "inter-layer", mk(m2d, mkldnn=False), layers=2, variant="native (mkldnn off)",
                  against=(mode, "inter-layer", 2, ""), comparison="native vs oneDNN (inter-layer dropout)")
    b.na("recurrent", f"nn.{cls.__name__} has no recurrent dropout (torch has no such knob)")
    return b


def torch_cells(info, size):
    """nn.LSTMCell / nn.GRUCell in a Python loop over time steps, built once."""
    import torch
    import torch.nn.functional as F

    T, B, H = SIZES[size]
    torch.manual_seed(0)
    lstm = info.cell == "lstm"
    cell = (torch.nn.LSTMCell if lstm else torch.nn.GRUCell)(H, H)
    x_np, dy_np = rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = torch.from_numpy(x_np), torch.from_numpy(dy_np)
    xg = x.clone().requires_grad_(True)

    def loop(inp, drop_in):
        if drop_in:
            inp = F.dropout(inp, P, training=True)
        h = inp.new_zeros(B, H)
        c = inp.new_zeros(B, H)
        outs = []
        for t in range(T):
            if lstm:
                h, c = cell(inp[t], (h, c))
            else:
                h = cell(inp[t], h)
            outs.append(h)
        return torch.stack(outs)

    def fwd(drop_in):
        def f():
            with torch.no_grad():
                loop(x, drop_in)
        return f

    def fb(drop_in):
        def f():
            cell.zero_grad(set_to_none=True)
            xg.grad = None
            loop(xg, drop_in).backward(dy)
        return f

    b = Bench(info.name, size, T, B, H, threads="torch 1, BLAS 1",
              context=lambda: single_thread(torch), version=torch.__version__)
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        b.add(mode, "off", mk(False))
        b.add(mode, "input", mk(True), note="F.dropout(x) before the loop",
              against=(mode, "off", 1, ""), comparison="input dropout vs off")
    name = type(cell).__name__
    b.na("recurrent", f"nn.{name} has no dropout knob; a hand-written loop would apply its own")
    b.na("inter-layer", f"nn.{name} has no dropout knob; stacking is the user's loop")
    return b


# ------------------------------------------------------------------ the reference against torch

def reference_vs_torch(size, threads="one"):
    """Cases for the float64 reference (``reference.run`` / ``run_vjp``) and torch CPU
    ``nn.LSTM`` float32 (forward as users call it, autograd on; backward alone on a retained
    graph; forward+backward). `threads`: "one" (torch and BLAS pinned to one thread) or
    "default" (whatever both use by default)."""
    import torch

    import reference as ref

    T, B, H = SIZES[size]
    rng = np.random.default_rng(0)
    w = ref.random_lstm(rng, H, H)
    x = rng.normal(size=(T, B, H))
    dy = rng.normal(size=(T, B, H))
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(H, H)
    xt = torch.tensor(x, dtype=torch.float32)
    dyt = torch.tensor(dy, dtype=torch.float32)
    xg = xt.clone().requires_grad_(True)
    kept = {}

    def torch_backward():  # backward alone: the graph of one forward, retained
        if "y" not in kept:
            kept["y"] = lstm(xg)[0]
        kept["y"].backward(dyt, retain_graph=True)

    def torch_fb():
        xg.grad = None
        lstm(xg)[0].backward(dyt)

    fns = {"reference forward": lambda: ref.run(w, x), "torch forward": lambda: lstm(xt),
           "float64 GEMM floor": float64_gemm_floor(w.W, w.R, x),
           "reference forward+backward": lambda: ref.run_vjp(w, x, dy), "torch forward+backward": torch_fb,
           "torch backward": torch_backward}
    ctx = (lambda: single_thread(torch)) if threads == "one" else contextlib.nullcontext
    return fns, ctx


