import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import numpy as np
try:
    import tensorflow as tf, tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID, T, B, U = "tf-keras-fused-path-input-mask-per-step", 8, 16, 8
tf.get_logger().setLevel("ERROR")
print("tensorflow", tf.__version__, "tf-keras", tf_keras.__version__)


def lanes_constant(recurrent_dropout):
    """LSTM(U, dropout=0.5) whose h_t[j] ~ 0 iff input feature j of step t was dropped:
    recurrent kernel 0, forget gate closed, input/output gates open, candidate = tanh(x_j)."""
    tf_keras.utils.set_random_seed(0)
    layer = tf_keras.layers.LSTM(U, dropout=0.5, recurrent_dropout=recurrent_dropout, return_sequences=True)
    layer.build((None, T, U))
    k = np.zeros((U, 4 * U), np.float32); k[:, 2 * U:3 * U] = np.eye(U)           # gates i, f, c, o
    b = np.zeros(4 * U, np.float32); b[:U] = 30; b[U:2 * U] = -30; b[3 * U:] = 30
    layer.set_weights([k, np.zeros((U, 4 * U), np.float32), b])
    h = layer(tf.ones((B, T, U)), training=True).numpy()
    kept = np.abs(h) > 0.1                        # (B, T, U) input mask: kept -> tanh(tanh(2)) = 0.74, else ~0
    return float(np.mean(np.all(kept == kept[:, :1], axis=1))), float(1 - kept.mean())


fused, drop_f = lanes_constant(0.0)      # default recurrent_dropout=0: the layer's fused path
cell, drop_c = lanes_constant(1e-6)      # recurrent_dropout>0: the cell loop (recurrent kernel is 0)
print(f"fraction of (row, feature) lanes with one mask over {T} steps: recurrent_dropout=0 {fused:.3f} "
      f"(dropped {drop_f:.2f}), recurrent_dropout=1e-6 {cell:.3f} (dropped {drop_c:.2f})")
print("expected: 1.000 on both paths (one (B, F) input mask per sequence, as the cell loop and Keras 3 do)")
if cell == 1.0 and fused < 0.5:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
