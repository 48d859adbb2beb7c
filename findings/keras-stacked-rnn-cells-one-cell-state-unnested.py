"""Keras 3: RNN(StackedRNNCells([one cell])) crashes: with one cell StackedRNNCells.call returns its
state list unnested, so the step's state structure differs from the initial one. Each backend in its
own process: TF raises ValueError with a mask, JAX TypeError without / ValueError with a mask,
torch IndexError with a mask (LSTMCell); unroll=True without a mask raises IndexError on all three."""
import os, subprocess, sys
ID = "keras-stacked-rnn-cells-one-cell-state-unnested"
CHILD = r'''
import os, sys, warnings; warnings.filterwarnings("ignore"); import numpy as np, keras
x = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("float32"); m = np.array([[1, 1, 0], [1, 0, 0]], bool)
for n, mask, unroll in ((1, None, False), (1, m, False), (1, None, True), (2, m, False), (2, None, True)):
    cells = keras.layers.StackedRNNCells([keras.layers.LSTMCell(2) for _ in range(n)])
    try:
        keras.layers.RNN(cells, return_sequences=True, unroll=unroll)(x, mask=mask); r = "ran"
    except Exception as e:
        r = type(e).__name__
    print(f"{n}|{mask is not None}|{unroll}|{r}")
'''
env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
procs = {b: subprocess.Popen([sys.executable, "-c", CHILD], env=dict(env, KERAS_BACKEND=b), cwd="/",
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
         for b in ("tensorflow", "jax", "torch")}
res = {}
for b, p in procs.items():
    out = p.communicate(timeout=120)[0]
    if "|" not in out:
        print(f"SKIPPED: keras on {b} did not run"); sys.exit(2)
    res[b] = {tuple(ln.split("|")[:3]): ln.split("|")[3] for ln in out.split() if ln.count("|") == 3}
    for (n, masked, unroll), r in res[b].items():
        print(f"{b:10s} cells={n} mask={masked:5s} unroll={unroll:5s}: {r}")
print("expected: every configuration runs (two cells do)")
claims = {"tensorflow": ("True", "False", "ValueError"), "jax": ("False", "False", "TypeError"),
          "torch": ("True", "False", "IndexError")}
one = all(res[b][("1",) + c[:2]] == c[2] for b, c in claims.items())
unrolled = all(res[b][("1", "False", "True")] == "IndexError" for b in res)
two_ok = all(r == "ran" for b in res for k, r in res[b].items() if k[0] == "2")
if one and unrolled and two_ok:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
