"""Keras 3, JAX backend, unroll=False, zero_output_for_mask=False: the output at a masked step
is the carried state states[0], so at a leading masked step it is the initial state h0; the
TF and torch backends (and JAX with unroll=True) give zeros there."""
import os, sys, warnings
os.environ["KERAS_BACKEND"] = "jax"
warnings.filterwarnings("ignore")
ID = "keras-jax-masked-output-is-carried-state"
try:
    import numpy as np
    import keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

rng = np.random.default_rng(0)
x = rng.normal(size=(2, 4, 3)).astype("float32")
mask = np.array([[0, 1, 1, 1], [0, 0, 1, 1]], bool)     # leading masked steps
h0, c0 = (rng.normal(size=(2, 2)).astype("float32") for _ in range(2))
ys = {}
for unroll in (False, True):
    keras.utils.set_random_seed(0)
    layer = keras.layers.LSTM(2, return_sequences=True, unroll=unroll)
    ys[unroll] = np.asarray(keras.ops.convert_to_numpy(layer(x, mask=mask, initial_state=[h0, c0])))
print("keras", keras.__version__, "backend", keras.backend.backend())
print("h0:", h0.tolist())
print("y at the leading masked steps, unroll=False:", ys[False][0, 0].tolist(), ys[False][1, :2].tolist())
print("y at the leading masked steps, unroll=True: ", ys[True][0, 0].tolist(), ys[True][1, :2].tolist(),
      "(zeros, as on the TF and torch backends)")
is_h0 = np.allclose(ys[False][0, 0], h0[0], atol=1e-6) and np.allclose(ys[False][1, :2], h0[1], atol=1e-6)
unrolled_zero = float(np.abs(ys[True][~mask]).max()) < 1e-7
valid_agree = float(np.abs(ys[False][mask] - ys[True][mask]).max()) < 1e-5
print("outputs at valid steps agree between the paths:", valid_agree)
if is_h0 and unrolled_zero and np.abs(h0).max() > 1e-3:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
