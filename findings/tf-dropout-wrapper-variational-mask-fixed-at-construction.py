import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
import numpy as np
try:
    import tensorflow as tf, tf_keras  # noqa: F401  (tf.compat.v1.nn.rnn_cell needs tf-keras)
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID, T, B, N, RUNS = "tf-dropout-wrapper-variational-mask-fixed-at-construction", 5, 4, 32, 3
tf.get_logger().setLevel("ERROR")
print("tensorflow", tf.__version__, "tf-keras", tf_keras.__version__)
rnn_cell = tf.compat.v1.nn.rnn_cell
tf.random.set_seed(0)
ok = True
for name, cls in (("tf.nn.RNNCellDropoutWrapper", tf.nn.RNNCellDropoutWrapper),
                  ("tf.compat.v1.nn.rnn_cell.DropoutWrapper", rnn_cell.DropoutWrapper)):
    cell = rnn_cell.BasicRNNCell(N, activation=tf.identity)    # output = x_t @ I: shows the masked input
    w = cls(cell, input_keep_prob=0.5, variational_recurrent=True, input_size=N, dtype=tf.float32)
    w.build(tf.TensorShape((None, N)))
    cell.set_weights([np.vstack([np.eye(N), np.zeros((N, N))]).astype(np.float32), np.zeros(N, np.float32)])
    masks = []                                                  # one (T, B, N) input mask per run (sequence)
    for run in range(RUNS):
        state, steps = tf.zeros((B, N)), []
        for t in range(T):
            out, state = w(tf.ones((B, N)), state)
            steps.append(out.numpy())
        masks.append(np.stack(steps))
    per_step = all(np.array_equal(m, m[:1].repeat(T, 0)) for m in masks)
    same_runs = all(np.array_equal(masks[0], m) for m in masks[1:])
    rows = bool(np.all(masks[0] == masks[0][:, :1]))
    print(f"{name}(variational_recurrent=True, input_keep_prob=0.5): one mask over the {T} steps {per_step}; "
          f"the same mask in all {RUNS} runs {same_runs}; all {B} rows share it {rows}; "
          f"dropped {float(np.mean(masks[0] == 0)):.2f}")
    ok = ok and per_step and same_runs
print("expected (docstring: 'the same dropout pattern is applied across all time steps per run call'): "
      "a new mask for every run (sequence)")
if ok:
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
