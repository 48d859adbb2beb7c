"""Keras 3: use_cudnn=True without cuDNN (CPU) raises ValueError on the TF backend, but the torch
backend (LSTM, GRU) and the JAX backend (GRU) silently run their own non-cuDNN fused loops."""
import subprocess, sys

CHILD = r'''
import os, sys, warnings
os.environ["KERAS_BACKEND"] = sys.argv[1]; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import numpy as np, keras
if sys.argv[1] == "torch": import torch; gpu = torch.cuda.is_available()
elif sys.argv[1] == "jax": import jax; gpu = any(d.platform == "gpu" for d in jax.devices())
else: import tensorflow as tf; gpu = bool(tf.config.list_physical_devices("GPU"))
print("GPU", gpu)
x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype("float32")
for C in ("LSTM", "GRU"):
    layer, default = getattr(keras.layers, C)(3, use_cudnn=True), getattr(keras.layers, C)(3, use_cudnn=False)
    default.build(x.shape); layer.build(x.shape); rng = np.random.default_rng(1)
    default.set_weights([rng.normal(0, .5, w.shape) for w in default.get_weights()]); layer.set_weights(default.get_weights())
    try:
        y = keras.ops.convert_to_numpy(layer(x))
        print(C, "RAN", np.abs(y - keras.ops.convert_to_numpy(default(x))).max())
    except ValueError as e:
        print(C, "RAISED", "ValueError" + (" use_cudnn=True was specified, but cuDNN is not supported" if "use_cudnn=True" in str(e) else ""))
'''
procs = {b: subprocess.Popen([sys.executable, "-c", CHILD, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for b in ("tensorflow", "jax", "torch")}
got = {}
for backend, p in procs.items():
    out, err = p.communicate()
    if p.returncode != 0:
        print(f"SKIPPED: keras on the {backend} backend did not run: {err.strip().splitlines()[-1:]}"); sys.exit(2)
    lines = out.splitlines()
    if lines[0] != "GPU False":
        print(f"SKIPPED: a GPU is visible to the {backend} backend; this repro needs a machine without cuDNN"); sys.exit(2)
    for line in lines[1:]:
        C, what, detail = line.split(None, 2)
        got[backend, C] = what
        print(f"{backend:10s} {C}(use_cudnn=True) on CPU: {what}"
              + (f" (max |y - use_cudnn=False| {float(detail):.2g}: the non-cuDNN result)" if what == "RAN" else f": {detail}"))
print("expected everywhere (as on tensorflow): ValueError 'use_cudnn=True was specified, but cuDNN is not supported ...'")
silent = [k for k in (("torch", "LSTM"), ("torch", "GRU"), ("jax", "GRU")) if got.get(k) == "RAN"]
ok = len(silent) == 3 and got.get(("tensorflow", "LSTM")) == "RAISED"
print("REPRODUCED: keras-use-cudnn-true-silent-fallback" if ok else "NOT REPRODUCED: keras-use-cudnn-true-silent-fallback")
sys.exit(0 if ok else 1)
