"""TensorFlow raw ops: BlockLSTM / BlockLSTMV2 and their bench builders."""
