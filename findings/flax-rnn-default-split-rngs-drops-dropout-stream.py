"""flax.linen nn.RNN, default split_rngs: an nn.Dropout inside the cell cannot see the 'dropout'
PRNG stream passed to init/apply (InvalidRngError), though the docstring says split_rngs only
chooses between splitting a stream per step and replicating it."""
import sys
try:
    import flax
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)
ID = "flax-rnn-default-split-rngs-drops-dropout-stream"

class DropoutLSTMCell(nn.RNNCellBase):
    features: int

    @nn.compact
    def __call__(self, carry, x):
        return nn.LSTMCell(self.features)(carry, nn.Dropout(0.5, deterministic=False)(x))

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return nn.LSTMCell(self.features, parent=None).initialize_carry(rng, input_shape)

    @property
    def num_feature_axes(self):
        return 1


x, rngs = jnp.ones((5, 2, 3)), {"params": jax.random.key(0), "dropout": jax.random.key(1)}
seen = {}
for split in (None, {"params": False, "dropout": True}):
    rnn = nn.RNN(DropoutLSTMCell(4), time_major=True, **({} if split is None else {"split_rngs": split}))
    try:
        y = rnn.apply(rnn.init(rngs, x), x, rngs={"dropout": jax.random.key(2)})
        seen[str(split)] = f"ran, y {tuple(y.shape)}"
    except flax.errors.InvalidRngError as e:
        seen[str(split)] = f"InvalidRngError: {str(e).split(' (')[0]}"
    print(f"split_rngs={split or 'default ' + str(dict(nn.RNN.split_rngs))}: {seen[str(split)]}")
print("expected: both run (default: the dropout key replicated or split per step, as the docstring describes)")
print(f"flax {flax.__version__}, jax {jax.__version__}")
bad = seen["None"].startswith("InvalidRngError") and seen[str({"params": False, "dropout": True})].startswith("ran")
print(f"REPRODUCED: {ID}" if bad else f"NOT REPRODUCED: {ID}")
sys.exit(0 if bad else 1)
