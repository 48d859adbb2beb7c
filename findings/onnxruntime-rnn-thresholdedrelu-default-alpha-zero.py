"""onnxruntime LSTM / GRU: activations=ThresholdedRelu without activation_alpha uses alpha = 0, not the
ThresholdedRelu operator's documented default 1.0 (spec: 'Default values are the same as of corresponding
ONNX operators')."""
import sys, warnings
warnings.filterwarnings("ignore")
try:
    import numpy as np, onnxruntime as ort
    from onnx import TensorProto as TP, helper
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ort.set_default_logger_severity(4)
ID, H = "onnxruntime-rnn-thresholdedrelu-default-alpha-zero", 1
x = np.array([[[0.5]], [[1.5]], [[0.25]]], np.float32)  # T=3, B=1, I=1
thr = lambda v, a: np.where(v >= a, v, 0.0)  # spec: ThresholdedRelu(x) = x if x >= alpha else 0
hits = []
for op, G in (("GRU", 3), ("LSTM", 4)):
    W = np.ones((1, G * H, 1), np.float32); R = np.zeros((1, G * H, H), np.float32)
    acts = ["Sigmoid", "ThresholdedRelu"] + (["Relu"] if op == "LSTM" else [])  # no activation_alpha given
    node = helper.make_node(op, ["X", "W", "R"], ["Y"], hidden_size=H, activations=acts)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TP.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("Y", TP.FLOAT, None)],
                          [helper.make_tensor(n, TP.FLOAT, a.shape, a.ravel()) for n, a in (("W", W), ("R", R))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    got = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    sig, h, c, want = 1 / (1 + np.exp(-x[:, 0, 0].astype(np.float64))), 0.0, 0.0, []
    for t, v in enumerate(x[:, 0, 0].astype(np.float64)):
        if op == "GRU":  # R = 0: z = sigmoid(x), ht = g(x), H = (1 - z) ht + z H
            h = (1 - sig[t]) * thr(v, 1.0) + sig[t] * h
        else:            # i = o = f = sigmoid(x), ct = g(x), C = f C + i ct, H = o * Relu(C), C >= 0
            c = sig[t] * c + sig[t] * thr(v, 1.0); h = sig[t] * c
        want.append(h)
    got = got.ravel().astype(np.float64)
    print(f"{op}: observed Y {np.round(got, 5).tolist()}; expected (alpha 1.0) {np.round(want, 5).tolist()}")
    hits.append(np.abs(got - want).max() > 1e-3)
ok = all(hits)
print(f"REPRODUCED: {ID}" if ok else f"NOT REPRODUCED: {ID}")
sys.exit(0 if ok else 1)
