"""tf-keras 2: a stateful LSTM under Input(batch_shape=(4, ...)) fits 9 samples with batch_size=4 (a
partial last batch of 1) and predict returns 12 rows for 9 samples; called eagerly on a batch of 1 the
same layer refuses it (ValueError: ... is incompatible with the layer: expected shape=(4, ...))."""
import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "tf-keras-stateful-partial-batch-accepted"
try:
    import numpy as np
    import tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

tf_keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(9, 1, 3)).astype("float32")   # batches of 4, 4, 1
inp = tf_keras.Input(batch_shape=(4, 1, 3))
lstm = tf_keras.layers.LSTM(2, stateful=True)
model = tf_keras.Model(inp, lstm(inp))
model.compile(optimizer="sgd", loss="mse")
loss = model.fit(x, np.zeros((9, 2)), batch_size=4, epochs=1, verbose=0, shuffle=False).history["loss"]
print("fit on 9 samples, batch_size=4: ran, loss", loss, "(expected: ValueError at the partial batch)")
rows = model.predict(x, batch_size=4, verbose=0).shape[0]
print(f"predict on 9 samples: {rows} rows (expected: ValueError, or 9 rows)")
try:
    lstm(x[:1]); eager = "ran"
except ValueError as e:
    eager = "ValueError: " + next(ln for ln in str(e).splitlines() if "incompatible" in ln).strip()[:90]
print("eager call on a batch of 1:", eager)
print("tf_keras", tf_keras.__version__)
if rows != 9 and eager.startswith("ValueError"):
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
