"""Keras 3, JAX backend: LSTM(unroll=True, zero_output_for_mask=True) repeats the previous
output at masked steps instead of zeros; the same layer with unroll=False gives zeros."""
import os, sys, warnings
os.environ["KERAS_BACKEND"] = "jax"
warnings.filterwarnings("ignore")
ID = "keras-jax-unroll-ignores-zero-output"
try:
    import numpy as np
    import keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

rng = np.random.default_rng(0)
x = rng.normal(size=(2, 4, 3)).astype("float32")
mask = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], bool)   # right padding, an inner gap
ys = {}
for unroll in (False, True):
    keras.utils.set_random_seed(0)
    layer = keras.layers.LSTM(2, return_sequences=True, unroll=unroll, zero_output_for_mask=True)
    ys[unroll] = np.asarray(keras.ops.convert_to_numpy(layer(x, mask=mask)))
masked_unrolled = float(np.abs(ys[True][~mask]).max())
masked_loop = float(np.abs(ys[False][~mask]).max())
prev = ys[True][0, 1]                                   # last valid output of row 0
print("keras", keras.__version__, "backend", keras.backend.backend())
print("max |y| at masked steps, unroll=False:", masked_loop, "(expected 0)")
print("max |y| at masked steps, unroll=True: ", masked_unrolled, "(expected 0)")
print("row 0, steps 2-3 (masked), unroll=True:", ys[True][0, 2:].tolist(), "; previous output", prev.tolist())
repeats = np.allclose(ys[True][0, 2:], prev, atol=1e-6)
if masked_unrolled > 1e-3 and masked_loop < 1e-7 and repeats:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
