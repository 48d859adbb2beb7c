"""Keras 3, TensorFlow backend: a stateful LSTM under Input(batch_shape=(4, ...)) accepts a partial
last batch in predict / fit (the batch-size check is skipped inside the compiled function): predict
on 9 samples returns 12 rows. Called eagerly on the same partial batch the layer raises ValueError."""
import os, re, sys, warnings
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "keras-tf-stateful-partial-batch-accepted"
try:
    import numpy as np
    import keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(9, 5, 3)).astype("float32")   # batches of 4, 4, 1
inp = keras.Input(batch_shape=(4, 5, 3))
lstm = keras.layers.LSTM(2, stateful=True)
model = keras.Model(inp, lstm(inp))
model.compile(optimizer="sgd", loss="mse")
try:
    rows = model.predict(x, batch_size=4, verbose=0).shape[0]
    print(f"predict on 9 samples, batch_size=4: {rows} rows (expected: ValueError, or 9 rows)")
except ValueError as e:
    rows = None
    print("predict raised ValueError:", str(e).strip().splitlines()[0][:100])
try:
    loss = model.fit(x, np.zeros((9, 2)), batch_size=4, epochs=1, verbose=0).history["loss"]
    print("fit on the same 9 samples ran, loss", loss)
except Exception as e:
    print("fit raised", type(e).__name__)
try:
    lstm(x[:1])
    eager = "ran"
except ValueError as e:
    eager = "ValueError: " + re.sub(r"\x1b\[[0-9;]*m", "", next(ln for ln in str(e).splitlines() if "stateful" in ln)).strip()[:90]
print("eager call on a batch of 1:", eager)
print("keras", keras.__version__, "backend", keras.backend.backend())
if rows is not None and rows != 9 and eager.startswith("ValueError"):
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
