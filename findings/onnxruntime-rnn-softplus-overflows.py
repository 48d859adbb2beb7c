"""onnxruntime LSTM / GRU: the Softplus activation overflows to inf for inputs above ~88.7 (float32
log(1 + exp(x))), where the spec's Softplus(x) = log(1 + e^x) is finite (~x), as onnxruntime's own
Softplus operator returns."""
import sys, warnings
warnings.filterwarnings("ignore")
try:
    import numpy as np, onnxruntime as ort
    from onnx import TensorProto as TP, helper
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ort.set_default_logger_severity(4)
ID = "onnxruntime-rnn-softplus-overflows"
x = np.array([[[10.0]], [[90.0]], [[100.0]]], np.float32)  # T=3, B=1, I=1
def run(node, inits):
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TP.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("Y", TP.FLOAT, None)],
                          [helper.make_tensor(n, TP.FLOAT, a.shape, a.ravel()) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0].ravel()
sp = lambda v: np.logaddexp(0.0, v)  # spec Softplus(x) = log(1 + e^x), evaluated without overflow
op_out = run(helper.make_node("Softplus", ["X"], ["Y"]), [])
W = np.array([[[-40.0], [0.0], [1.0]]], np.float32); R = np.zeros((1, 3, 1), np.float32)  # z ~ 0, ht = g(x)
gru = run(helper.make_node("GRU", ["X", "W", "R"], ["Y"], hidden_size=1, activations=["Sigmoid", "Softplus"]),
          [("W", W), ("R", R)])
h, want = 0.0, []
for v in x.ravel().astype(np.float64):
    z = 1 / (1 + np.exp(40.0 * v)); h = (1 - z) * sp(v) + z * h; want.append(h)  # z = sigmoid(-40 x)
print(f"Softplus operator on x = {x.ravel().tolist()}: {op_out.tolist()}")
print(f"GRU (activations Sigmoid, Softplus): observed Y {gru.tolist()}; expected (spec) {np.round(want, 4).tolist()}")
ok = np.isfinite(want).all() and not np.isfinite(gru[1:]).any() and np.isfinite(op_out).all()
print(f"REPRODUCED: {ID}" if ok else f"NOT REPRODUCED: {ID}")
sys.exit(0 if ok else 1)
