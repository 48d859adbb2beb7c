"""Keras 3: dropout=1.0 / recurrent_dropout=1.0 in training drop nothing in the LSTM/GRU cells
(`0.0 < rate < 1.0` guards), while keras.layers.Dropout(1.0) and the fused paths that run drop all."""
import subprocess, sys

CHILD = r'''
import os, sys, warnings
os.environ["KERAS_BACKEND"] = sys.argv[1]; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import numpy as np, keras
L, c = keras.layers, keras.ops.convert_to_numpy
x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
print("Dropout(1.0) max|out|", float(np.abs(c(L.Dropout(1.0)(x, training=True))).max()))
def weighted(layer):  # the same weights for every layer of a cell type (the same rng stream)
    layer.build(x.shape); rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(0, .5, w.shape) for w in layer.get_weights()]); return layer
for C in ("LSTM", "GRU"):
    ref = weighted(getattr(L, C)(2)); w = ref.get_weights()
    none, no_x = c(ref(x)), c(ref(np.zeros_like(x)))         # nothing dropped / every input unit dropped
    ref.set_weights([w[0], np.zeros_like(w[1])] + w[2:]); no_h = c(ref(x))  # h_(t-1) dropped in the matmul
    for name, kw, fused in (("dropout", {"dropout": 1.0}, False), ("recurrent_dropout", {"recurrent_dropout": 1.0}, True),
                            ("dropout", {"dropout": 1.0}, True)):
        layer = getattr(L, C)(2, seed=1, **kw) if fused else L.RNN(getattr(L, C + "Cell")(2, seed=1, **kw))
        y, alld = c(weighted(layer)(x, training=True)), (no_x if name == "dropout" else no_h)
        print(C, "layer" if fused else "RNN(cell)", name, np.abs(y - none).max(), np.abs(y - alld).max())
'''
procs = {b: subprocess.Popen([sys.executable, "-c", CHILD, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for b in ("tensorflow", "jax", "torch")}
ok, fused_drops = True, []
for backend, p in procs.items():
    out, err = p.communicate()
    if p.returncode != 0:
        print(f"SKIPPED: keras on the {backend} backend did not run: {err.strip().splitlines()[-1:]}"); sys.exit(2)
    print(f"{backend}: keras.layers.{out.splitlines()[0]} (everything dropped)")
    for line in out.splitlines()[1:]:
        C, path, knob, d_none, d_all = line.split(); d_none, d_all = float(d_none), float(d_all)
        verdict = "drops nothing" if d_none < 1e-5 < d_all else "drops everything" if d_all < 1e-5 < d_none else "?"
        print(f"  {C} {path:9s} {knob}=1.0 training: |y - no dropout| {d_none:.2g}, |y - all dropped| {d_all:.2g}: {verdict}")
        if path == "RNN(cell)" or knob == "recurrent_dropout":  # the cell loop runs
            ok &= verdict == "drops nothing"   # the documented 'fraction of the units to drop' = 1 is ignored
        elif verdict == "drops everything":
            fused_drops.append(f"{backend} {C}")
print("expected: a rate of 1 drops every unit (as keras.layers.Dropout(1.0) does), on every path")
print("LSTM/GRU layers (use_cudnn='auto') that do drop everything (fused kernel ran):", fused_drops)
ok &= bool(fused_drops)  # so the result of dropout=1 depends on the kernel that runs
print("REPRODUCED: keras-rate-one-drops-nothing" if ok else "NOT REPRODUCED: keras-rate-one-drops-nothing")
sys.exit(0 if ok else 1)
