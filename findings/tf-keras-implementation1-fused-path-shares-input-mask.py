import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import numpy as np
try:
    import tensorflow as tf, tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID, T, B, U = "tf-keras-implementation1-fused-path-shares-input-mask", 6, 16, 8
tf.get_logger().setLevel("ERROR")
print("tensorflow", tf.__version__, "tf-keras", tf_keras.__version__)
k = np.zeros((U, 4 * U), np.float32); k[:, :U] = 3 * np.eye(U); k[:, 2 * U:3 * U] = np.eye(U)   # gates i, f, c, o
b = np.zeros(4 * U, np.float32); b[U:2 * U] = -30; b[3 * U:] = 30                                # f closed, o open


def i_dropped_where_c_kept(make):
    """On ones: h = tanh(i * g), i = sigmoid(3 m_i), g = tanh(m_c), m in {0, 2} (each gate's input mask).
    g kept: h = tanh(0.9975 * 0.964) = 0.745 if the i-gate input was kept too, tanh(0.5 * 0.964) = 0.448 if not."""
    tf_keras.utils.set_random_seed(0)
    layer = make(); layer.build((None, T, U))
    layer.set_weights([k, np.zeros((U, 4 * U), np.float32), b])
    h = layer(tf.ones((B, T, U)), training=True).numpy()
    c_kept = np.abs(h) > 0.1
    return float(np.mean(np.abs(h[c_kept] - 0.448) < 0.05))


lstm = i_dropped_where_c_kept(lambda: tf_keras.layers.LSTM(U, implementation=1, dropout=0.5, return_sequences=True))
rnn = i_dropped_where_c_kept(lambda: tf_keras.layers.RNN(
    tf_keras.layers.LSTMCell(U, implementation=1, dropout=0.5), return_sequences=True))
print(f"where the candidate gate's input was kept, the input gate's input was dropped in: "
      f"LSTM(implementation=1, dropout=0.5) {lstm:.3f}, RNN(LSTMCell(implementation=1, dropout=0.5)) {rnn:.3f}")
print("expected: the same on both (the cell: one independent mask per gate, ~0.5); 0 = one mask shared by all gates")
if lstm == 0.0 and 0.3 < rnn < 0.7:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
