"""Keras 3 on torch (CPU too): training a stateful LSTM / GRU with the default use_cudnn='auto' crashes in
backward ('modified by an inplace operation'); use_cudnn=False (the generic loop) trains."""
import os, sys, warnings
os.environ["KERAS_BACKEND"] = "torch"
warnings.filterwarnings("ignore")
try:
    import numpy as np, keras, torch
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID = "keras-torch-stateful-fit-inplace-crash"
x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype("float32")  # 2 full batches of 4
hits = []
for cell in ("LSTM", "GRU"):
    for cudnn in ("auto", False):
        keras.utils.set_random_seed(0)
        inp = keras.Input(batch_shape=(4, 5, 3))
        model = keras.Model(inp, getattr(keras.layers, cell)(2, stateful=True, use_cudnn=cudnn)(inp))
        model.compile(optimizer="sgd", loss="mse")
        try:
            loss = model.fit(x, np.zeros((8, 2), "float32"), batch_size=4, verbose=0, shuffle=False).history["loss"]
            got = f"trained, loss {loss[0]:.3g}"
        except RuntimeError as e:
            got = f"RuntimeError: {str(e).splitlines()[0][:110]}"
        print(f"{cell}(stateful=True, use_cudnn={cudnn!r}).fit on {torch.device('cpu')}: {got}")
        crashed = "modified by an inplace operation" in got
        hits.append(crashed if cudnn == "auto" else not crashed)
print("expected: every fit trains (the documented stateful use: fixed batch size, shuffle=False)")
ok = all(hits)
print(f"REPRODUCED: {ID}" if ok else f"NOT REPRODUCED: {ID}")
sys.exit(0 if ok else 1)
