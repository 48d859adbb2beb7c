"""Keras 3, TensorFlow backend: LSTM(unroll=True, go_backwards=True, zero_output_for_mask=True)
zeroes its outputs (kept in processing order, i.e. reversed) with the mask in the original
time order: valid steps are zeroed, masked ones kept. The same layer with unroll=False is right."""
import os, sys, warnings
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "keras-tf-unroll-go-backwards-zero-output-unreversed-mask"
try:
    import numpy as np
    import keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

rng = np.random.default_rng(0)
x = rng.normal(size=(1, 4, 3)).astype("float32")
mask = np.array([[1, 0, 1, 1]], bool)               # one masked step (an inner gap)
out = {}
for unroll in (False, True):
    keras.utils.set_random_seed(0)
    layer = keras.layers.LSTM(2, return_sequences=True, return_state=True, unroll=unroll,
                              go_backwards=True, zero_output_for_mask=True)
    out[unroll] = [np.asarray(keras.ops.convert_to_numpy(o))[0] for o in layer(x, mask=mask)]
proc_mask = mask[:, ::-1]                            # the mask in processing order: [1, 1, 0, 1]
print("keras", keras.__version__, "backend", keras.backend.backend())
print("mask in processing order:", proc_mask.astype(int).tolist())
print("|y| per step, unroll=False:", np.abs(out[False][0]).max(-1).round(4).tolist())
print("|y| per step, unroll=True: ", np.abs(out[True][0]).max(-1).round(4).tolist())
zeroed = np.abs(out[True][0]).max(-1) == 0
print("steps zeroed with unroll=True:", np.flatnonzero(zeroed).tolist(), "expected:", np.flatnonzero(~proc_mask[0]).tolist())
dy = float(np.abs(out[True][0] - out[False][0]).max())
dstate = max(float(np.abs(a - b).max()) for a, b in zip(out[True][1:], out[False][1:]))
print(f"max |y difference| {dy:.3g}; max |state difference| {dstate:.3g}")
if dy > 1e-3 and dstate < 1e-5 and zeroed[1] and not zeroed[2]:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
