"""torch: nn.LSTM/GRU and the cell loops, their RNG replay and bench builders."""
