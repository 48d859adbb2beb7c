"""tf-keras 2: LSTM(unroll=True, zero_output_for_mask=True) with a mask: backend.rnn's unrolled branch
zeroes the stacked outputs with the whole mask in original order. return_sequences=False: ValueError
in set_shape; go_backwards=True, return_sequences=True: the wrong steps are zeroed (unroll=False: right)."""
import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "tf-keras-unroll-zero-output-for-mask"
try:
    import numpy as np
    import tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

tf_keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(1, 4, 3)).astype("float32")
mask = np.array([[True, False, True, True]])
try:
    tf_keras.layers.LSTM(2, unroll=True, zero_output_for_mask=True)(x, mask=mask)
    crash = None
except ValueError as e:
    crash = next(ln for ln in str(e).splitlines() if "shape" in ln).strip()
print("return_sequences=False:", crash or "ran", "(expected: the last output, shape (1, 2))")
out = {}
for unroll in (False, True):
    layer = tf_keras.layers.LSTM(2, unroll=unroll, go_backwards=True, return_sequences=True, zero_output_for_mask=True)
    layer.build((1, 4, 3))
    if unroll:
        layer.set_weights(w)
    w = layer.get_weights()
    out[unroll] = np.abs(layer(x, mask=mask).numpy()[0]).max(axis=-1) == 0
    print(f"go_backwards, unroll={unroll}: zeroed output steps {np.flatnonzero(out[unroll]).tolist()}"
          " (expected [2]: processing order reverses the mask to [1, 1, 0, 1])")
print("tf_keras", tf_keras.__version__)
if crash and not np.array_equal(out[True], out[False]):
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
