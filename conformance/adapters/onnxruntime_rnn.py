"""onnxruntime's CPU ``LSTM`` / ``GRU`` kernels, each run as a one-node ONNX model.

One layer, forward or bidirectional, float32 (onnxruntime's CPU RNN kernels refuse double).
The model is built with ``onnx.helper`` (opset 14, layout 0 = time-major), checked with
``onnx.checker`` and run in an ``InferenceSession`` on the CPUExecutionProvider. Inputs from
``reference.layouts.to_onnx_lstm / to_onnx_gru`` (gate orders i, o, f, c and z, r, h;
peepholes [p_i, p_o, p_f]; GRU ``linear_before_reset`` = canonical reset_after).
Outputs: ``Y (T, D, B, H)`` becomes y ``(T, B, D*H)`` (forward features first), ``Y_h``
``(D, B, H)`` is h_n, ``Y_c`` c_n.
"""
from __future__ import annotations

import numpy as np

from reference import Result, layouts

from .base import BaseAdapter

OPSET = 14


def one_node_model(op, feeds, attrs, out_shapes):
    """A checked ONNX model running one `op` on float32 `feeds` (ordered: name -> array or None
    for an omitted optional input)."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node(op, [k if v is not None else "" for k, v in feeds.items()],
                            [f"out{i}" for i in range(len(out_shapes))], **attrs)
    graph = helper.make_graph(
        [node], f"one_{op}",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in feeds.items() if v is not None],
        [helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, s) for i, s in enumerate(out_shapes)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class OnnxRuntimeRNN(BaseAdapter):
    def forward(self, stack, x, h0=None, c0=None):
        import onnxruntime as ort

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        ws = stack[0]
        T, B, _ = x.shape
        D = len(ws)
        H = ws[0].hidden_size
        lstm = self.info.cell == "lstm"
        f32 = np.float32
        if lstm:
            d = layouts.to_onnx_lstm(ws, dtype=f32)
            if h0 is None and c0 is not None:
                h0 = np.zeros((D, B, H), f32)
            feeds = {"X": x, "W": d["W"], "R": d["R"], "B": d.get("B"), "sequence_lens": None,
                     "initial_h": h0, "initial_c": c0, "P": d.get("P")}
            attrs = {}
            out_shapes = [(T, D, B, H), (D, B, H), (D, B, H)]
        else:
            d = layouts.to_onnx_gru(ws, dtype=f32)
            feeds = {"X": x, "W": d["W"], "R": d["R"], "B": d.get("B"), "sequence_lens": None,
                     "initial_h": h0}
            attrs = {"linear_before_reset": d["linear_before_reset"]}
            out_shapes = [(T, D, B, H), (D, B, H)]
        # trailing omitted optional inputs are dropped, inner ones stay as "" names
        while list(feeds) and feeds[list(feeds)[-1]] is None:
            feeds.pop(list(feeds)[-1])
        attrs.update(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
        model = one_node_model("LSTM" if lstm else "GRU", feeds, attrs, out_shapes)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        outs = sess.run(None, {k: np.ascontiguousarray(v) for k, v in feeds.items() if v is not None})
        Y = outs[0]
        y = np.ascontiguousarray(Y.transpose(0, 2, 1, 3).reshape(T, B, D * H))
        return Result(y=y, h_n=outs[1], c_n=outs[2] if lstm else None)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for ``onnxruntime.LSTM`` and ``onnxruntime.GRU`` (info.cell decides)."""
    return OnnxRuntimeRNN(info, device=device, dtype=dtype)
