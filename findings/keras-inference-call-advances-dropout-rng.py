"""Keras 3: an inference call (training=False) of LSTM/GRU with dropout still draws dropout masks
(RNN.call -> _maybe_config_dropout_masks), advancing the cell's SeedGenerator, so the masks of the
next training call change. keras.layers.Dropout draws nothing in inference. Each backend in its own process."""
import subprocess, sys

CHILD = r'''
import os, sys, warnings
os.environ["KERAS_BACKEND"] = sys.argv[1]; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import numpy as np, keras
L, c = keras.layers, keras.ops.convert_to_numpy
x = np.random.default_rng(0).normal(size=(4, 2, 6)).astype("float32")
for name, layer in (("Dropout(0.5)", L.Dropout(0.5, seed=1)), ("LSTM(dropout=0.5)", L.LSTM(3, dropout=0.5, seed=1)),
                    ("GRU(recurrent_dropout=0.5)", L.GRU(3, recurrent_dropout=0.5, seed=1))):
    gen = getattr(layer, "cell", layer).seed_generator
    layer(x, training=True); s1 = c(gen.state).copy()      # a training call draws its masks
    layer(x, training=False); s2 = c(gen.state).copy()  # an inference call: nothing dropped, but...
    print(name.replace(" ", ""), int(np.abs(s2 - s1).sum()))
'''
procs = {b: subprocess.Popen([sys.executable, "-c", CHILD, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for b in ("tensorflow", "jax", "torch")}
ok = True
for backend, p in procs.items():
    out, err = p.communicate()
    if p.returncode != 0:
        print(f"SKIPPED: keras on the {backend} backend did not run: {err.strip().splitlines()[-1:]}"); sys.exit(2)
    for line in out.splitlines():
        name, steps = line.split(); steps = int(steps)
        print(f"{backend:10s} {name:26s} seed=1: a training=False call advanced its SeedGenerator state by {steps} "
              f"({'the next training masks change' if steps else 'no draw'})")
        ok &= steps > 0 if name.startswith(("LSTM", "GRU")) else steps == 0  # Dropout: the contrast
print("expected: an inference call draws no masks, so it leaves the next training call's masks unchanged (as Dropout)")
print("REPRODUCED: keras-inference-call-advances-dropout-rng" if ok
      else "NOT REPRODUCED: keras-inference-call-advances-dropout-rng")
sys.exit(0 if ok else 1)
