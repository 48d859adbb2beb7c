import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import numpy as np
try:
    import tensorflow as tf, tf_keras  # noqa: F401  (tf.compat.v1.nn.rnn_cell needs tf-keras)
    from tensorflow.python.keras.layers.legacy_rnn.rnn_cell_impl import LSTMStateTuple as FilterClass
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID, B, N = "tf-rnncelldropoutwrapper-state-filter-misses-lstm-c", 64, 16
tf.get_logger().setLevel("ERROR")
print("tensorflow", tf.__version__, "tf-keras", tf_keras.__version__)
rnn_cell = tf.compat.v1.nn.rnn_cell
tf.random.set_seed(0)
x = tf.random.normal((B, N)); state = rnn_cell.LSTMStateTuple(tf.random.normal((B, N)), tf.random.normal((B, N)))
changed = {}
for name, cls in (("tf.nn.RNNCellDropoutWrapper", tf.nn.RNNCellDropoutWrapper),
                  ("tf.compat.v1.nn.rnn_cell.DropoutWrapper", rnn_cell.DropoutWrapper)):
    cell = rnn_cell.LSTMCell(N)
    _, new = cls(cell, state_keep_prob=0.5, seed=1)(x, state)   # the wrapper builds the cell
    _, plain = cell(x, state)                                   # the same cell, no wrapper: its own new (c, h)
    n, p = {k: getattr(new, k).numpy() for k in "ch"}, {k: getattr(plain, k).numpy() for k in "ch"}
    changed[name] = {k: float(np.mean(n[k] != p[k])) for k in "ch"}
    changed[name]["dropped or x2"] = float(np.mean((n["c"] == 0) | (np.abs(n["c"] - 2 * p["c"]) < 1e-5)))
    print(f"{name}(LSTMCell, state_keep_prob=0.5): fraction changed by the wrapper {changed[name]}")
print("state class:", type(plain).__module__, "| class the v2 wrapper's filter checks:", FilterClass.__module__)
print("expected (docstring: 'the memory state (c component of any LSTMStateTuple) ... is never modified'): c 0.0")
v2, v1 = changed["tf.nn.RNNCellDropoutWrapper"], changed["tf.compat.v1.nn.rnn_cell.DropoutWrapper"]
if v2["c"] > 0.3 and v2["h"] > 0.3 and v2["dropped or x2"] == 1.0 and v1["c"] == 0.0 and v1["h"] > 0.3:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
