"""jax.experimental.rnn and its bench builders."""
