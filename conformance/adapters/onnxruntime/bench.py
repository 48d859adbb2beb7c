"""Bench builders for the onnxruntime paths (see conformance/core/bench.py for timing and cases)."""
from __future__ import annotations

import numpy as np

from conformance.core.bench import SIZES, Bench, rng_arrays

# ------------------------------------------------------------------ onnxruntime

def onnxruntime_rnn(info, size):
    """One-node LSTM/GRU model, InferenceSession built once; forward only."""
    import onnxruntime as ort

    import reference as ref
    from reference import layouts

    from conformance.adapters.onnxruntime.rnn import one_node_model

    T, B, H = SIZES[size]
    rng = np.random.default_rng(0)
    lstm = info.cell == "lstm"
    w = ref.random_lstm(rng, H, H) if lstm else ref.random_gru(rng, H, H)
    d = (layouts.to_onnx_lstm if lstm else layouts.to_onnx_gru)([w], dtype=np.float32)
    (x,) = rng_arrays(0, (T, B, H))
    feeds = {"X": x, "W": d["W"], "R": d["R"], "B": d.get("B")}
    attrs = dict(hidden_size=H, direction="forward")
    if not lstm:
        attrs["linear_before_reset"] = d["linear_before_reset"]
    outs = [(T, 1, B, H), (1, B, H)] + ([(1, B, H)] if lstm else [])
    model = one_node_model("LSTM" if lstm else "GRU", {k: v for k, v in feeds.items() if v is not None},
                           attrs, outs)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {k: np.ascontiguousarray(v) for k, v in feeds.items() if v is not None}
    b = Bench(info.name, size, T, B, H, version=ort.__version__, threads="onnxruntime default")
    b.add("forward", "off", lambda: sess.run(None, inputs))
    b.na("off", "an InferenceSession has no backward", modes=("forward+backward",))
    why = "an inference session of one RNN node: no dropout knob (an ONNX Dropout node would be a second model)"
    for kind in ("input", "recurrent", "inter-layer"):
        b.na(kind, why)
    return b


