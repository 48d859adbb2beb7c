"""onnxruntime's CPU LSTM / GRU / RNN refuse the opset-14 attribute layout=1 (batch-major) at session creation."""
import sys, warnings
warnings.filterwarnings("ignore")
try:
    import numpy as np, onnxruntime as ort
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ort.set_default_logger_severity(4)
ID, T, B, I, H = "onnxruntime-layout-1-refused", 4, 3, 2, 5
x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
def model(op, layout, G):
    rng = np.random.default_rng(1)  # same weights for both layouts
    W = rng.standard_normal((1, G * H, I)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, G * H, H)).astype(np.float32) * 0.5
    node = helper.make_node(op, ["X", "W", "R"], ["Y", "Y_h"], hidden_size=H, layout=layout)
    X_shape = [T, B, I] if layout == 0 else [B, T, I]
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, X_shape)],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None)],
                          [helper.make_tensor("W", TensorProto.FLOAT, W.shape, W.ravel()),
                           helper.make_tensor("R", TensorProto.FLOAT, R.shape, R.ravel())])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
refused = []
for op, G in (("LSTM", 4), ("GRU", 3), ("RNN", 1)):
    m0, m1 = model(op, 0, G), model(op, 1, G)
    y0 = ort.InferenceSession(m0.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    y1_spec = ReferenceEvaluator(m1).run(None, {"X": x.transpose(1, 0, 2)})[0]  # (B, T, 1, H) per the spec
    err = float(np.abs(y1_spec.transpose(1, 2, 0, 3) - y0).max())
    try:
        ort.InferenceSession(m1.SerializeToString(), providers=["CPUExecutionProvider"])
        print(f"{op} layout=1: session created (expected behaviour)")
    except Exception as e:  # onnxruntime.capi.onnxruntime_pybind11_state.Fail
        msg = str(e)
        print(f"{op} layout=1: observed {type(e).__name__}: ...{msg[msg.find('Batchwise'):][:70]}")
        refused.append("layout == 1" in msg)
    print(f"  expected: Y (B, T, 1, H) = layout-0 Y transposed; ONNX reference evaluator vs it: {err:.1e}")
ok = len(refused) == 3 and all(refused)
print(f"REPRODUCED: {ID}" if ok else f"NOT REPRODUCED: {ID}")
sys.exit(0 if ok else 1)
