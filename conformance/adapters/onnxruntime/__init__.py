"""onnxruntime: one-node LSTM/GRU models and their bench builders."""
