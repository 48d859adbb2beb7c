import os, sys, warnings
os.environ.pop("TF_USE_LEGACY_KERAS", None); os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
try:
    import tensorflow as tf, keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID = "tf-compat-v1-rnn-cell-unavailable-under-keras3"
tf.get_logger().setLevel("ERROR")
print("tensorflow", tf.__version__, "keras", keras.__version__, "(Keras 3: TF_USE_LEGACY_KERAS unset)")
if not keras.__version__.startswith("3"):
    print("SKIPPED: Keras 3 is not the installed Keras"); sys.exit(2)
errors = {}
for name in ("DropoutWrapper", "LSTMCell", "LSTMStateTuple", "BasicLSTMCell"):
    try:
        getattr(tf.compat.v1.nn.rnn_cell, name); print(f"tf.compat.v1.nn.rnn_cell.{name}: available")
    except AttributeError as e:
        errors[name] = str(e); print(f"tf.compat.v1.nn.rnn_cell.{name}: AttributeError: {e}")
w = tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell(3), input_keep_prob=0.5)
out, _ = w(tf.ones((2, 4)), [tf.zeros((2, 3)), tf.zeros((2, 3))])
print("tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell) still runs: output", tuple(out.shape))
print("expected: the documented TF 1 API tf.compat.v1.nn.rnn_cell.* is reachable (or the error names the remedy)")
if "DropoutWrapper" in errors and "is not available with Keras 3" in errors["DropoutWrapper"]:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
