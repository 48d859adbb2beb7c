"""Keras 3, TF backend: TimeDistributed traced with an undefined time axis maps over the BATCH size
instead of the time steps (wrong number of steps, or a crash when B > T): a tf.function with input
signature (None, None, F), and plain model.predict on variable-length sequences after a retrace."""
import os, sys, warnings
os.environ["KERAS_BACKEND"] = "tensorflow"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; warnings.filterwarnings("ignore")
try:
    import numpy as np, keras, tensorflow as tf
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

keras.utils.set_random_seed(0)
F, U = 6, 5
def run(fn, B, T):
    x = np.random.default_rng(T).normal(size=(B, T, F)).astype("float32")
    try:
        return tuple(fn(x).shape)
    except tf.errors.InvalidArgumentError as e:
        return "InvalidArgumentError: " + str(e).strip().splitlines()[0].split("}} ")[-1][:60]

bad = 0
for inner in (keras.layers.Dropout(0.5, seed=1), keras.layers.Dense(U)):
    td, units = keras.layers.TimeDistributed(inner), (F if isinstance(inner, keras.layers.Dropout) else U)
    fn = tf.function(lambda t: td(t, training=True), input_signature=[tf.TensorSpec((None, None, F), tf.float32)])
    for B, T in ((8, 32), (4, 3)):
        got = run(fn, B, T)
        print(f"tf.function TimeDistributed({type(inner).__name__}) on {(B, T, F)}: {got}, expected {(B, T, units)}")
        bad += got != (B, T, units)
model = keras.Sequential([keras.Input((None, F)), keras.layers.TimeDistributed(keras.layers.Dense(U))])
for T in (7, 9, 11):  # the same model, sequences of another length: Keras retraces with the time axis None
    got = run(lambda x: model.predict(x, batch_size=4, verbose=0), 4, T)
    print(f"model.predict, Input((None, {F})) -> TimeDistributed(Dense({U})), x {(4, T, F)}: {got}, expected {(4, T, U)}")
    bad += got != (4, T, U)
ok = bad >= 6  # every traced call with an undefined time axis is wrong (the first predict is traced with T=7)
print("REPRODUCED: keras-time-distributed-undefined-steps" if ok
      else "NOT REPRODUCED: keras-time-distributed-undefined-steps")
sys.exit(0 if ok else 1)
