"""onnxruntime LSTM / GRU / RNN: a sequence_lens entry of 0 (valid: its check asks for >= 0) gives that row
Y_h / Y_c = zeros, not its initial_h / initial_c (the state after zero steps)."""
import sys, warnings
warnings.filterwarnings("ignore")
try:
    import numpy as np, onnxruntime as ort
    from onnx import TensorProto as TP, helper
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ort.set_default_logger_severity(4)
ID, T, B, I, H, D = "onnxruntime-zero-sequence-length-zeroes-state", 4, 3, 2, 3, 2
rng = np.random.default_rng(0)
x = rng.standard_normal((T, B, I)).astype(np.float32)
h0, c0 = (rng.standard_normal((D, B, H)).astype(np.float32) for _ in range(2))
def session(op, G):
    W, R = (rng.standard_normal((D, G * H, n)).astype(np.float32) for n in (I, H))
    lstm = op == "LSTM"; outs = ["Y", "Y_h"] + ["Y_c"] * lstm
    node = helper.make_node(op, ["X", "W", "R", "", "L", "h0"] + ["c0"] * lstm, outs, hidden_size=H,
                            direction="bidirectional")
    vi = [helper.make_tensor_value_info(n, t, s) for n, t, s in
          [("X", TP.FLOAT, x.shape), ("L", TP.INT32, [B]), ("h0", TP.FLOAT, h0.shape)] + [("c0", TP.FLOAT, c0.shape)] * lstm]
    g = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info(o, TP.FLOAT, None) for o in outs],
                          [helper.make_tensor(n, TP.FLOAT, a.shape, a.ravel()) for n, a in (("W", W), ("R", R))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda L: s.run(None, {"X": x, "L": np.array(L, np.int32), "h0": h0, **({"c0": c0} if lstm else {})})
hits = []
for op, G in (("LSTM", 4), ("GRU", 3), ("RNN", 1)):
    run = session(op, G)
    try:
        run([T, -1, 2])
    except Exception as e:
        msg = str(e)[str(e).find("All values"):][:48]
    out = run([T, 0, 2])  # row 1 has length 0
    states = [("Y_h", out[1], h0)] + ([("Y_c", out[2], c0)] if op == "LSTM" else [])
    for name, got, init in states:
        print(f"{op} row with length 0: observed max|{name}| = {np.abs(got[:, 1]).max():.3g}; expected {name} = "
              f"initial state, max|initial| = {np.abs(init[:, 1]).max():.3g}; max|y| = {np.abs(out[0][:, :, 1]).max():.3g}")
        hits.append(np.all(got[:, 1] == 0) and np.abs(got[:, 1] - init[:, 1]).max() > 0.1)
    print(f"  its validation message for length -1: {msg!r}")
ok = len(hits) == 4 and all(hits)
print(f"REPRODUCED: {ID}" if ok else f"NOT REPRODUCED: {ID}")
sys.exit(0 if ok else 1)
