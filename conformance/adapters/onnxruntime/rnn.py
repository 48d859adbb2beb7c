"""onnxruntime's CPU ``LSTM`` / ``GRU`` kernels, each run as a one-node ONNX model.

One layer, forward or bidirectional, float32 (onnxruntime's CPU RNN kernels refuse double).
The model is built with ``onnx.helper`` (opset 14), checked with ``onnx.checker`` and run in
an ``InferenceSession`` on the CPUExecutionProvider. Inputs from
``reference.layouts.to_onnx_lstm / to_onnx_gru`` (gate orders i, o, f, c and z, r, h;
peepholes [p_i, p_o, p_f]; GRU ``linear_before_reset`` = canonical reset_after).

Option ``layout``: 0 (default, time-major: X (T, B, I), Y (T, D, B, H), states (D, B, H)) or
1 (batch-major: X (B, T, I), Y (B, T, D, H), states (B, D, H)); the adapter transposes in and
out so that either gives the reference's shapes: y ``(T, B, D*H)`` (forward features first),
h_n ``(D, B, H)``, c_n. ``lengths`` go in as the int32 ``sequence_lens`` input; measured:
padded outputs are zeros and Y_h / Y_c are each row's state at its last valid step, in both
directions (reference policy "zero_output").
"""
from __future__ import annotations

import numpy as np

from reference import Result, layouts

from conformance.adapters.base import BaseAdapter

OPSET = 14
LAYOUTS = (0, 1)


def one_node_model(op, feeds, attrs, out_shapes):
    """A checked ONNX model running one `op` on `feeds` (ordered: name -> array or None for an
    omitted optional input; float32, ``sequence_lens`` int32)."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node(op, [k if v is not None else "" for k, v in feeds.items()],
                            [f"out{i}" for i in range(len(out_shapes))], **attrs)
    kind = lambda k: TensorProto.INT32 if k == "sequence_lens" else TensorProto.FLOAT  # noqa: E731
    graph = helper.make_graph(
        [node], f"one_{op}",
        [helper.make_tensor_value_info(k, kind(k), v.shape) for k, v in feeds.items() if v is not None],
        [helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, s) for i, s in enumerate(out_shapes)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run_model(model, feeds):
    """Outputs of `model` on onnxruntime's CPU provider for the non-None `feeds`."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.ascontiguousarray(v) for k, v in feeds.items() if v is not None})


class OnnxRuntimeRNN(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        self.layout = info.option("layout", 0)
        if self.layout not in LAYOUTS:
            raise ValueError(f"{info.name}: option layout must be one of {LAYOUTS}, got {self.layout!r}")
        self.last_model = None  # the ONNX model of the latest call (for repros and reports)

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        lengths = self.checked_lengths(lengths, x.shape)
        feeds, attrs, out_shapes = self.inputs(stack[0], x, h0, c0, lengths)
        self.last_model = one_node_model(self.info.cell.upper(), feeds, attrs, out_shapes)
        return self.outputs(run_model(self.last_model, feeds), x.shape, len(stack[0]))

    def inputs(self, ws, x, h0, c0, lengths):
        """(feeds, attributes, output shapes) of the one-node model, in this path's layout."""
        T, B, _ = x.shape
        D, H = len(ws), ws[0].hidden_size
        f32 = np.float32
        lstm = self.info.cell == "lstm"
        seq = None if lengths is None else lengths.astype(np.int32)
        if lstm and h0 is None and c0 is not None:
            h0 = np.zeros((D, B, H), f32)
        if self.layout == 1:  # batch-major X and states
            x = x.transpose(1, 0, 2)
            h0, c0 = (None if a is None else a.transpose(1, 0, 2) for a in (h0, c0))
        if lstm:
            d = layouts.to_onnx_lstm(ws, dtype=f32)
            feeds = {"X": x, "W": d["W"], "R": d["R"], "B": d.get("B"), "sequence_lens": seq,
                     "initial_h": h0, "initial_c": c0, "P": d.get("P")}
            attrs = {}
        else:
            d = layouts.to_onnx_gru(ws, dtype=f32)
            feeds = {"X": x, "W": d["W"], "R": d["R"], "B": d.get("B"), "sequence_lens": seq, "initial_h": h0}
            attrs = {"linear_before_reset": d["linear_before_reset"]}
        while feeds[next(reversed(feeds))] is None:  # trailing omitted inputs are dropped,
            feeds.popitem()                          # inner ones stay as "" names
        attrs.update(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
        if self.layout:
            attrs["layout"] = 1
        y_shape, s_shape = ((T, D, B, H), (D, B, H)) if self.layout == 0 else ((B, T, D, H), (B, D, H))
        return feeds, attrs, [y_shape, s_shape] + ([s_shape] if lstm else [])

    def outputs(self, outs, shape, D):
        """Y, Y_h[, Y_c] in this path's layout -> Result in the reference's shapes."""
        T, B, _ = shape
        Y = outs[0] if self.layout == 0 else outs[0].transpose(1, 2, 0, 3)  # -> (T, D, B, H)
        states = [o if self.layout == 0 else o.transpose(1, 0, 2) for o in outs[1:]]
        y = np.ascontiguousarray(Y.transpose(0, 2, 1, 3).reshape(T, B, -1))
        return Result(y=y, h_n=states[0], c_n=states[1] if len(states) > 1 else None)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for the onnxruntime paths (info.cell decides LSTM or GRU; option layout 0 or 1)."""
    return OnnxRuntimeRNN(info, device=device, dtype=dtype)
