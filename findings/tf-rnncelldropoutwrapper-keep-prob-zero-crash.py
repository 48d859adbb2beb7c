"""tf.nn.RNNCellDropoutWrapper accepts keep_prob=0 (documented range [0, 1], checked by the constructor)
but its first step fails inside tf.nn.dropout (non-variational) or returns NaN (variational_recurrent=True)."""
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import sys
try:
    import numpy as np
    import tensorflow as tf
    import keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID = "tf-rnncelldropoutwrapper-keep-prob-zero-crash"
x, state = tf.ones((2, 4)), [tf.zeros((2, 3)), tf.zeros((2, 3))]
seen = {}
for variational in (False, True):
    kw = dict(variational_recurrent=True, input_size=4, dtype=tf.float32) if variational else {}
    w = tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell(3), output_keep_prob=0.0, **kw)  # accepted
    try:
        out, _ = w(x, state)
        seen[variational] = "NaN" if np.isnan(out.numpy()).any() else f"output {out.numpy().ravel()[:3]}"
    except ValueError as e:
        seen[variational] = f"ValueError: {str(e).splitlines()[0][:90]}"
    print(f"output_keep_prob=0.0, variational_recurrent={variational}: {seen[variational]}")
print("expected: every output element 0 (keep nothing), as the documented range [0, 1] allows, "
      "or a ValueError from the constructor")
bad = seen[False].startswith("ValueError") or seen[True] == "NaN"
print(f"tensorflow {tf.__version__}, keras {keras.__version__}")
print(f"REPRODUCED: {ID}" if bad else f"NOT REPRODUCED: {ID}")
sys.exit(0 if bad else 1)
