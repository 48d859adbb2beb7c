import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
try:
    import tensorflow as tf, tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID = "tf-keras-legacy-dropout-wrapper-rejects-keras-cell"
tf.get_logger().setLevel("ERROR")
print("tensorflow", tf.__version__, "tf-keras", tf_keras.__version__)
x, state = tf.ones((2, 4)), [tf.zeros((2, 3)), tf.zeros((2, 3))]
cell = tf_keras.layers.LSTMCell(3)
wrapper = tf.compat.v1.nn.rnn_cell.DropoutWrapper(cell, input_keep_prob=0.5)  # accepted: "like an RNNCell"
print("constructed:", type(wrapper).__module__ + "." + type(wrapper).__name__, "around", type(cell).__module__)
problem = None
for what, call in (("wrapper(x, state)", lambda: wrapper(x, state)),
                   ("tf.compat.v1.nn.dynamic_rnn", lambda: tf.compat.v1.nn.dynamic_rnn(
                       wrapper, tf.ones((2, 5, 4)), initial_state=state))):
    try:
        call(); print(f"{what}: runs")
    except TypeError as e:
        problem = str(e).splitlines()[0]; print(f"{what}: TypeError: {problem[:120]}")
ok = tf.nn.RNNCellDropoutWrapper(tf_keras.layers.LSTMCell(3), input_keep_prob=0.5)(x, state)[0].shape
print(f"control: tf.nn.RNNCellDropoutWrapper around the same kind of cell runs, output {tuple(ok)}")
print("expected: the wrapper runs around the cell it accepted (or refuses it in the constructor)")
if problem and "unexpected keyword argument 'scope'" in problem:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
