"""A third-party adapter: an LSTM written by hand as a time loop over torch ops, with a
recurrent dropout knob."""
from conformance.adapters.base import AdapterInfo, BaseAdapter
import reference

SCALED = "rows independent, kept value 1/(1-p)"
INFO = AdapterInfo(
    name="examples.HandLSTM", framework="torch", distribution="torch", cell="lstm",
    features=frozenset({"stacked", "bidirectional", "initial_state", "float64"}),
    factory=__name__ + ":make",  # this module's own make(), wherever the file is copied to
    dropout=("recurrent_dropout",),  # the knob's name, as dropout_session's rates call it
    # what the knob is meant to do, in the words the report prints (copy a measured block)
    semantics={"recurrent_dropout": {
        "recurrent": "per sequence, gates shared, " + SCALED,  # h_(t-1), one mask per sequence
        "input": "none", "recurrent_c": "none", "output": "none",
        "evaluation mode": "nothing dropped", "seeds": "same seed same masks; other seed other masks",
        "inference call": "does not advance the random state"}},
)


class HandLSTM(BaseAdapter):
    def forward(self, stack, x, h0=None, c0=None):
        return self.run(stack, x, h0, c0)  # inference: no dropout

    def dropout_session(self, stack, rates, seed):
        """The layer with drop rate p = rates["recurrent_dropout"]: each call draws fresh masks
        from one generator seeded with `seed`; training=False calls draw nothing."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        p = rates.get("recurrent_dropout", 0.0)
        return lambda x, h0=None, c0=None, training=True: self.run(
            stack, x, h0, c0, p if training else 0.0, generator)

    def run(self, stack, x, h0=None, c0=None, p=0.0, generator=None):
        # checks the case against INFO.features, casts everything to self.dtype,
        # gives stack as a list of layers of lists of directions
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        import torch  # the framework, imported on use only

        T, B, _ = x.shape
        H = stack[0][0].hidden_size
        n = sum(len(layer) for layer in stack)
        dt = torch.float32 if self.dtype == "float32" else torch.float64
        h0 = torch.zeros(n, B, H, dtype=dt) if h0 is None else torch.from_numpy(h0)
        c0 = torch.zeros(n, B, H, dtype=dt) if c0 is None else torch.from_numpy(c0)
        inp = torch.from_numpy(x)
        h_n, c_n = [], []
        with torch.no_grad():
            for layer in stack:
                outs = []
                for d, w in enumerate(layer):
                    W, R = torch.from_numpy(w.W), torch.from_numpy(w.R)
                    b = torch.zeros(4 * H, dtype=dt)
                    for bias in (w.b_x, w.b_h):  # either bias may be absent
                        if bias is not None:
                            b = b + torch.from_numpy(bias)
                    # recurrent dropout: one mask on h_(t-1) per sequence, kept values 1/(1-p)
                    keep = torch.ones(B, H, dtype=dt) if not p else \
                        (torch.rand(B, H, generator=generator) >= p).to(dt) / (1 - p)
                    k = len(h_n)  # index l*D + d, as in torch
                    h, c = h0[k], c0[k]
                    y = [None] * T
                    for t in (range(T - 1, -1, -1) if d == 1 else range(T)):  # d=1 runs backwards
                        gates = inp[t] @ W.T + (h * keep) @ R.T + b
                        i, f, g, o = gates.chunk(4, dim=1)  # the reference's gate order
                        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                        c = f * c + i * g
                        h = o * torch.tanh(c)
                        y[t] = h
                    outs.append(torch.stack(y))
                    h_n.append(h)
                    c_n.append(c)
                inp = torch.cat(outs, dim=2)  # the next layer's input: both directions
        return reference.Result(y=inp.numpy(), h_n=torch.stack(h_n).numpy(), c_n=torch.stack(c_n).numpy())


def make(info=None, *, device="cpu", dtype="float32"):
    return HandLSTM(info or INFO, device=device, dtype=dtype)
