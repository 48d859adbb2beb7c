"""tf-keras 2: LSTM / GRU(dropout=1.0) or (recurrent_dropout=1.0), documented "Float between 0 and 1",
raise ValueError in training: the mask is drawn by tf.nn.dropout, which refuses rate >= 1."""
import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "tf-keras-rate-one-crash"
try:
    import numpy as np
    import tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype("float32")
raised = []
for cell in ("LSTM", "GRU"):
    for kw in (dict(dropout=1.0), dict(recurrent_dropout=1.0)):
        layer = getattr(tf_keras.layers, cell)(2, **kw)
        layer(x, training=False)  # inference runs
        try:
            y = layer(x, training=True).numpy()
            print(f"{cell}({kw}) training=True: ran, max |y| {np.abs(y).max():.3g} (expected: everything dropped)")
        except ValueError as e:
            msg = next(ln for ln in str(e).splitlines() if "rate" in ln).strip()
            print(f"{cell}({kw}) training=True: ValueError {msg[:90]} (expected: everything dropped)")
            raised.append(cell)
print("tf_keras", tf_keras.__version__)
if len(raised) == 4:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
