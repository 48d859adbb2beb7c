"""tf-keras 2: LSTM(time_major=True) takes inputs (T, B, F) but reads the mask as (T, B), while the call
docstring documents "mask: Binary tensor of shape [batch, timesteps]". The documented (B, T) mask raises."""
import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "tf-keras-time-major-mask-not-batch-major"
try:
    import numpy as np
    import tensorflow as tf
    import tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

T, B = 5, 3
x = np.random.default_rng(0).normal(size=(T, B, 2)).astype("float32")
mask = np.ones((B, T), bool); mask[0, 3:] = False  # [batch, timesteps], as documented
layer = tf_keras.layers.LSTM(2, time_major=True, return_sequences=True)
try:
    layer(x, mask=tf.constant(mask))
    documented = "ran"
except (ValueError, tf.errors.InvalidArgumentError) as e:
    documented = type(e).__name__ + ": " + next(ln for ln in str(e).splitlines() if "broadcastable" in ln or "shape" in ln).strip()[-90:]
print("mask (B, T) as documented:", documented, "(expected: runs)")
y = layer(x, mask=tf.constant(mask.T)).numpy()
print("mask (T, B), transposed:", y.shape, "runs")
print("tf_keras", tf_keras.__version__)
if documented != "ran":
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
