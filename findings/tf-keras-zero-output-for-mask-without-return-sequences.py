"""tf-keras 2: LSTM(zero_output_for_mask=True, return_sequences=False) with a mask returns zeros as the
last output of a sample whose last step is masked, although the RNN docstring says the field "is only
used when return_sequences is True and mask is provided" (then: the last valid step's output)."""
import os, sys, warnings
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.filterwarnings("ignore")
ID = "tf-keras-zero-output-for-mask-without-return-sequences"
try:
    import numpy as np
    import tf_keras
except ImportError as e:
    print(f"SKIPPED: {e}"); sys.exit(2)

tf_keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(1, 4, 3)).astype("float32")
mask = np.array([[True, True, False, False]])  # right padding: the last valid step is 1
zeroed = []
for rd in (0.0, 0.5):  # fused path (recurrent_dropout=0) and the cell loop; inference, no dropout
    seq = tf_keras.layers.LSTM(2, recurrent_dropout=rd, return_sequences=True)
    last = tf_keras.layers.LSTM(2, recurrent_dropout=rd, zero_output_for_mask=True)
    seq.build((1, 4, 3)); last.build((1, 4, 3)); last.set_weights(seq.get_weights())
    want = seq(x, mask=mask).numpy()[0, 1]
    got = last(x, mask=mask).numpy()[0]
    print(f"recurrent_dropout={rd}: last output {np.round(got, 4).tolist()}, "
          f"expected the output of step 1 {np.round(want, 4).tolist()}")
    zeroed.append(np.all(got == 0) and np.any(want != 0))
print("tf_keras", tf_keras.__version__)
if all(zeroed):
    print(f"REPRODUCED: {ID}"); sys.exit(0)
print(f"NOT REPRODUCED: {ID}"); sys.exit(1)
