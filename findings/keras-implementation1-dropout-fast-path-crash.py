"""Keras 3: LSTM / GRU(implementation=1, dropout>0, recurrent_dropout=0) crash in training on the
fast path (use_cudnn="auto") on every backend; use_cudnn=False (the generic loop) runs.
Each backend runs in its own process (KERAS_BACKEND is read once, at import)."""
import re, subprocess, sys

CHILD = r'''
import os, sys, warnings
os.environ["KERAS_BACKEND"] = sys.argv[1]; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import re, numpy as np, keras
x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
for C, uc in (("LSTM", "auto"), ("GRU", "auto"), ("LSTM", False), ("GRU", False)):
    layer = getattr(keras.layers, C)(3, implementation=1, dropout=0.5, use_cudnn=uc, seed=1, kernel_initializer="ones")
    try:
        layer(x, training=True); print(C, uc, "RAN")
    except Exception as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        why = re.search(r"(Rank of input|Cannot broadcast|expand\().*", text)
        print(C, uc, "CRASH", type(e).__name__, why.group(0)[:90] if why else text[:90])
'''
BROADCAST = {"tensorflow": "Rank of input", "jax": "Cannot broadcast", "torch": "expand("}
procs = {b: subprocess.Popen([sys.executable, "-c", CHILD, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for b in BROADCAST}
ok = True
for backend, p in procs.items():
    out, err = p.communicate()
    if p.returncode != 0:
        print(f"SKIPPED: keras on the {backend} backend did not run: {err.strip().splitlines()[-1:]}"); sys.exit(2)
    for line in out.splitlines():
        C, uc, verdict = line.split(None, 2)
        print(f"{backend:10s} {C}(implementation=1, dropout=0.5, use_cudnn={uc!s:5s}) training: {verdict}")
        want_crash = uc == "auto"  # the fast path crashes with the broadcast of the per-gate mask list
        ok &= (verdict.startswith("CRASH") and BROADCAST[backend] in verdict) if want_crash else verdict == "RAN"
print("expected: every configuration runs (the cell applies one input mask per gate on both paths)")
print("REPRODUCED: keras-implementation1-dropout-fast-path-crash" if ok
      else "NOT REPRODUCED: keras-implementation1-dropout-fast-path-crash")
sys.exit(0 if ok else 1)
