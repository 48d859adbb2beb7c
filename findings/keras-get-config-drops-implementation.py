"""Keras 3: LSTM/GRU/LSTMCell/GRUCell.get_config omit `implementation`, so every rebuild from the config
(Bidirectional, from_config, clone_model, save/load) runs implementation=2: one input dropout mask
shared by all gates instead of one per gate. get_config is backend-independent: one backend suffices."""
import os, sys, tempfile, warnings
os.environ["KERAS_BACKEND"] = "jax"; warnings.filterwarnings("ignore")
try:
    import numpy as np, keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

L = keras.layers
x0 = np.ones((2, 4), "float32")  # one time step (B, F) for the cell's mask hook

def masks(cell):
    """(implementation, number of input dropout masks the cell draws: one per gate, or 1 shared)."""
    m = cell.get_dropout_mask(x0); cell.reset_dropout_mask()
    return cell.implementation, len(m) if isinstance(m, list) else 1

ok = True
for C in ("LSTM", "GRU"):
    layer = getattr(L, C)(2, implementation=1, dropout=0.5)
    model = keras.Sequential([keras.Input((3, 4)), getattr(L, C)(2, implementation=1, dropout=0.5)])
    with tempfile.TemporaryDirectory() as d:
        model.save(os.path.join(d, "m.keras")); loaded = keras.models.load_model(os.path.join(d, "m.keras"))
    bi = L.Bidirectional(getattr(L, C)(2, implementation=1, dropout=0.5))
    bi_rnn = L.Bidirectional(L.RNN(getattr(L, C + "Cell")(2, implementation=1, dropout=0.5)))
    rebuilt = {"from_config": type(layer).from_config(layer.get_config()).cell,
               "Bidirectional forward": bi.forward_layer.cell, "Bidirectional backward": bi.backward_layer.cell,
               "Bidirectional(RNN(cell)) forward": bi_rnn.forward_layer.cell,
               "clone_model": keras.models.clone_model(model).layers[0].cell,
               "save + load_model": loaded.layers[0].cell}
    want = masks(layer.cell)
    print(f"{C}(implementation=1, dropout=0.5): (implementation, input masks) = {want}; "
          f"'implementation' in get_config(): layer {'implementation' in layer.get_config()}, "
          f"cell {'implementation' in layer.cell.get_config()}")
    for how, cell in rebuilt.items():
        got = masks(cell)
        print(f"  {how:34s} {got}  (expected {want})")
        ok &= got == (2, 1) and want[1] > 1
print("REPRODUCED: keras-get-config-drops-implementation" if ok
      else "NOT REPRODUCED: keras-get-config-drops-implementation")
sys.exit(0 if ok else 1)
