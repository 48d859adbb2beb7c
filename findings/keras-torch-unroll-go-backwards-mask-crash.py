"""Keras 3, torch backend: LSTM / GRU(unroll=True, go_backwards=True) with a mask raise
AttributeError ('tuple' object has no attribute 'shape'), and so does Bidirectional(LSTM(unroll=True))
with a mask; go_backwards=False, or unroll=False, runs."""
import os, re, sys, warnings
os.environ["KERAS_BACKEND"] = "torch"
warnings.filterwarnings("ignore")
ID = "keras-torch-unroll-go-backwards-mask-crash"
try:
    import numpy as np
    import keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

x = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("float32")
mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
L = keras.layers
cases = {
    "LSTM(unroll=True, go_backwards=True)": lambda: L.LSTM(2, unroll=True, go_backwards=True),
    "GRU(unroll=True, go_backwards=True)": lambda: L.GRU(2, unroll=True, go_backwards=True),
    "Bidirectional(LSTM(unroll=True))": lambda: L.Bidirectional(L.LSTM(2, return_sequences=True, unroll=True)),
    "LSTM(unroll=True) (control)": lambda: L.LSTM(2, unroll=True),
    "LSTM(go_backwards=True) (control)": lambda: L.LSTM(2, go_backwards=True),
}
crashed = {}
for name, build in cases.items():
    try:
        build()(x, mask=mask)
        crashed[name] = False
        print(f"{name}: ran")
    except AttributeError as e:
        crashed[name] = "'tuple' object has no attribute 'shape'" in str(e)
        print(f"{name}: AttributeError:", re.sub(r"\x1b\[[0-9;]*m", "", next((ln for ln in str(e).splitlines() if "tuple" in ln), str(e))).strip()[:90])
print("keras", keras.__version__, "backend", keras.backend.backend(), "(expected: every case runs)")
bad = [n for n in cases if "control" not in n]
if all(crashed[n] for n in bad) and not any(crashed[n] for n in cases if "control" in n):
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
