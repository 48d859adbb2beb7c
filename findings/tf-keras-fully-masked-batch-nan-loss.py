"""tf-keras 2: fit on Masking -> LSTM(return_sequences=True): a batch whose every step is masked gets
loss nan (losses_utils.apply_valid_mask: mask * total / valid, valid = 0): fit's epoch loss is nan."""
import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "tf-keras-fully-masked-batch-nan-loss"
try:
    import numpy as np
    import tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

tf_keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(5, 2, 3)).astype("float32")
x[4] = 0.0  # the last batch (batch_size=4: 4 + 1) is one sample with both steps masked
inp = tf_keras.Input(shape=(2, 3))
model = tf_keras.Model(inp, tf_keras.layers.LSTM(2, return_sequences=True)(tf_keras.layers.Masking(0.0)(inp)))
model.compile(optimizer="sgd", loss="mse")
first = model.evaluate(x[:4], np.zeros((4, 2, 2)), verbose=0)
last = model.evaluate(x[4:], np.zeros((1, 2, 2)), verbose=0)
print(f"loss of a batch with valid steps {first:.4g}; of the fully masked batch {last} (expected: finite, 0)")
hist = model.fit(x, np.zeros((5, 2, 2)), batch_size=4, epochs=1, verbose=0, shuffle=False).history["loss"]
print("fit on the 5 samples, batch_size=4: loss", hist, "(expected: finite)")
print("tf_keras", tf_keras.__version__)
if np.isnan(last) and np.isnan(hist[-1]):
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
