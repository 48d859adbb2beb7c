"""One time step of each cell, forward and backward, on prepared weights.

A kernel holds one layer-direction's weights, gate blocks in the canonical order. The layer
loop (`rnn.py`) computes the input projections of all steps at once with `Wx` and `bias`,
then feeds the kernel step by step
    xp_t  (B, G*H)   the input projection of step t, biases already added
    hm    (G', B, Hout)  h_{t-1} after the recurrent mask; G' = 1 (one mask for all gates) or G
and gets back the new state; the kernel keeps what its backward step needs (`start(keep=True)`).
Masks, padding and the order of steps are the layer loop's business, not the cell's.

For speed the LSTM evaluates all four gates with one sigmoid on negated pre-activations,
1 / (1 + exp(-a)), and tanh(a) = 2*sigmoid(2a) - 1 for the candidate: `Wx`, its recurrent
weights and bias are scaled by -1 (gates i, f, o) and -2 (candidate). Scaling by a power of
two is exact, so this computes the same numbers as the textbook formulas; gradients are taken
with respect to the unscaled pre-activations.
"""
from __future__ import annotations

import numpy as np


def sigmoid_of_negated_(a):
    """In-place 1 / (1 + exp(a)) = sigmoid(-a)."""
    np.exp(a, out=a)
    a += 1.0
    np.reciprocal(a, out=a)
    return a


def sigmoid_(a):
    """In-place logistic function 1 / (1 + exp(-a)); exp overflow (a < -709) correctly gives 0,
    so callers run under np.errstate(over="ignore")."""
    np.negative(a, out=a)
    return sigmoid_of_negated_(a)


def _bias(b, size, dtype):
    return np.zeros(size, dtype) if b is None else b


class LSTMKernel:
    """LSTM gates i, f, g, o. The forward writes each step into preallocated tapes (one slot
    when no backward follows); the backward reads them as whole (T, B, ...) arrays."""

    gates = 4

    def __init__(self, w, dtype):
        H = w.hidden_size
        self.H, self.hout, self.dtype = H, w.output_size, dtype
        self.W, self.R = w.W, w.R
        scale = np.full((4 * H, 1), -1.0, dtype)  # see the module docstring
        scale[2 * H:3 * H] = -2.0
        self.Wx = w.W * scale
        self.RT = np.ascontiguousarray((w.R * scale).T)
        bias = _bias(w.b_x, 4 * H, dtype) + _bias(w.b_h, 4 * H, dtype)
        bias[H:2 * H] += w.forget_bias
        self.bias = bias * scale[:, 0]
        self.peep = w.peephole  # rows i, f, o
        self.neg_peep = None if w.peephole is None else -w.peephole
        self.Wp = w.W_proj
        self.clip = w.cell_clip

    def start(self, steps, batch, keep):
        """Allocate the tapes: every step's gates, c and tanh(c) (one slot unless `keep`)."""
        H, dt, n = self.H, self.dtype, steps if keep else 1
        self.keep = keep
        self.A = np.empty((n, batch, 4, H), dt)  # i, f, g, o after their nonlinearities
        self.TC = np.empty((n, batch, H), dt)
        self.C = np.empty((steps, batch, H), dt) if keep else None
        if keep:
            self.CP = np.empty((steps, batch, H), dt)  # c_{t-1}
            self.rec = [None] * steps  # h_{t-1} after the recurrent mask, (G', B, Hout)
            self.M = np.empty((steps, batch, H), dt) if self.Wp is not None else None
            self.clipped = np.zeros((steps, batch, H), bool) if self.clip is not None else None

    def _recurrent(self, hm, out):
        """out (B, 4H) = each gate block's masked h @ its recurrent weights."""
        if hm.shape[0] == 1:
            np.matmul(hm[0], self.RT, out=out)
            return
        H = self.H
        for g in range(4):
            out[:, g * H:(g + 1) * H] = hm[g] @ self.RT[:, g * H:(g + 1) * H]

    def step(self, t, xp_t, h, c, hm):
        H, s = self.H, t if self.keep else 0
        a4 = self.A[s]
        a = a4.reshape(a4.shape[0], 4 * H)
        i, f, g, o = a4[:, 0], a4[:, 1], a4[:, 2], a4[:, 3]
        self._recurrent(hm, a)
        a += xp_t
        if self.peep is not None:
            i += self.neg_peep[0] * c
            f += self.neg_peep[1] * c
            sigmoid_of_negated_(a[:, :3 * H])
        else:
            sigmoid_of_negated_(a)
        g *= 2.0
        g -= 1.0
        c_new = np.multiply(f, c, out=self.C[t] if self.keep else None)  # fresh: c may be carried on
        c_new += i * g
        if self.clip is not None:
            if self.keep:
                np.greater(np.abs(c_new), self.clip, out=self.clipped[t])
            np.clip(c_new, -self.clip, self.clip, out=c_new)
        if self.peep is not None:
            o += self.neg_peep[2] * c_new
            sigmoid_of_negated_(o)
        tc = np.tanh(c_new, out=self.TC[s])
        if self.keep:
            self.CP[t] = c
            self.rec[t] = hm
        if self.Wp is None:
            return o * tc, c_new
        m = np.multiply(o, tc, out=self.M[t]) if self.keep else o * tc
        return m @ self.Wp.T, c_new

    def start_backward(self):
        T, B = self.A.shape[:2]
        self.DA = np.empty_like(self.A)  # gate pre-activation gradients, (T, B, 4, H)
        self.DH = np.empty((T, B, self.hout), self.dtype) if self.Wp is not None else None

    def step_back(self, t, dh_new, dc_new):
        """Gradients of step t's gate pre-activations (into self.DA[t]); returns
        (dhm (G', B, Hout), dh_direct, dc_prev)."""
        H, a4, da4 = self.H, self.A[t], self.DA[t]
        i, f, g, o = a4[:, 0], a4[:, 1], a4[:, 2], a4[:, 3]
        tc = self.TC[t]
        dm = dh_new
        if self.Wp is not None:
            self.DH[t] = dh_new
            dm = dh_new @ self.Wp
        dm_o = dm * o
        da_o = np.multiply(dm_o, tc, out=da4[:, 3])
        da_o -= o * da_o  # dm * tc * o * (1 - o)
        dc = dm_o - dm_o * tc * tc  # through tanh(c)
        dc += dc_new
        if self.peep is not None:
            dc += da_o * self.peep[2]
        if self.clip is not None:
            dc[self.clipped[t]] = 0
        np.multiply(dc * g, i - i * i, out=da4[:, 0])
        np.multiply(dc * self.CP[t], f - f * f, out=da4[:, 1])
        np.multiply(dc * i, 1 - g * g, out=da4[:, 2])
        dc_prev = dc * f
        if self.peep is not None:
            dc_prev += da4[:, 0] * self.peep[0] + da4[:, 1] * self.peep[1]
        da = da4.reshape(da4.shape[0], 4 * H)
        if self.rec[t].shape[0] == 1:
            return (da @ self.R)[None], None, dc_prev
        return np.stack([da[:, k * H:(k + 1) * H] @ self.R[k * H:(k + 1) * H] for k in range(4)]), None, dc_prev

    def finish_backward(self):
        """(dxp, drec, rec_inputs, extra): gate pre-activation gradients (T, B, 4H) for the input
        and recurrent products, the recurrent products' inputs, and peephole / projection grads."""
        T, B = self.DA.shape[:2]
        da = self.DA.reshape(T, B, 4 * self.H)
        extra = {}
        if self.peep is not None:
            DA = self.DA
            extra["peephole"] = np.stack([(DA[..., 0, :] * self.CP).sum((0, 1)), (DA[..., 1, :] * self.CP).sum((0, 1)),
                                          (DA[..., 3, :] * self.C).sum((0, 1))])
        if self.Wp is not None:
            extra["W_proj"] = self.DH.reshape(-1, self.hout).T @ self.M.reshape(-1, self.H)
        return da, da, np.stack(self.rec), extra


class GRUKernel:
    gates = 3

    def __init__(self, w, dtype):
        H = w.hidden_size
        self.H = self.hout = H
        self.W, self.R = w.W, w.R
        self.Wx = w.W
        self.RT = np.ascontiguousarray(w.R.T)
        self.reset_after = w.reset_after
        b_x, b_h = _bias(w.b_x, 3 * H, dtype), _bias(w.b_h, 3 * H, dtype)
        bias = b_x.copy()
        bias[:2 * H] += b_h[:2 * H]
        self.b_hn = b_h[2 * H:]
        if not self.reset_after:  # the candidate's recurrent bias sits outside r: fold it
            bias[2 * H:] += self.b_hn
        self.bias = bias

    def _rec(self, hm, lo, hi):
        """Recurrent matmul for the gate blocks lo..hi-1."""
        H = self.H
        if hm.shape[0] == 1:
            return hm[0] @ self.RT[:, lo * H:hi * H]
        return np.concatenate([hm[k] @ self.RT[:, k * H:(k + 1) * H] for k in range(lo, hi)], axis=1)

    def start(self, steps, batch, keep):
        self.keep = keep
        self.caches = [None] * steps if keep else None

    def step(self, t, xp_t, h, c, hm):
        H = self.H
        if self.reset_after:
            hp = self._rec(hm, 0, 3)
            hp[:, 2 * H:] += self.b_hn
            rz = sigmoid_(xp_t[:, :2 * H] + hp[:, :2 * H])
            r, z = rz[:, :H], rz[:, H:]
            hn_lin = hp[:, 2 * H:]
            n = np.tanh(xp_t[:, 2 * H:] + r * hn_lin)
            rec_in = hm
        else:
            rz = sigmoid_(xp_t[:, :2 * H] + self._rec(hm, 0, 2))
            r, z = rz[:, :H], rz[:, H:]
            hm_n = hm[-1]
            u = r * hm_n
            n = np.tanh(xp_t[:, 2 * H:] + u @ self.RT[:, 2 * H:])
            hn_lin = None
            rec_in = np.stack([hm[0], hm[0], u]) if hm.shape[0] == 1 else np.stack([hm[0], hm[1], u])
        h_new = h - n
        h_new *= z
        h_new += n
        if self.keep:
            self.caches[t] = (r, z, n, hn_lin, hm, rec_in, h)
        return h_new, None

    def start_backward(self):
        steps = len(self.caches)
        batch = self.caches[0][1].shape[0]
        self.DXP = np.empty((steps, batch, 3 * self.H), self.caches[0][1].dtype)
        self.DREC = np.empty_like(self.DXP)

    def step_back(self, t, dh_new, dc_new):
        """Writes step t's gate pre-activation gradients into DXP[t] (input side) and DREC[t]
        (recurrent side); returns (dhm (G', B, H), dh_direct, None)."""
        r, z, n, hn_lin, hm, rec_in, h_prev = self.caches[t]
        H = self.H
        dz = dh_new * (h_prev - n)
        dh_direct = dh_new * z
        da_n = dh_new * (1 - z) * (1 - n * n)
        dxp = self.DXP[t]
        dxp[:, 2 * H:] = da_n
        if self.reset_after:
            dhn = da_n * r
            dr = da_n * hn_lin
        else:
            du = da_n @ self.R[2 * H:]
            dr = du * hm[-1]
        np.multiply(dr, r * (1 - r), out=dxp[:, :H])
        np.multiply(dz, z * (1 - z), out=dxp[:, H:2 * H])
        drec = self.DREC[t]
        drec[...] = dxp
        if self.reset_after:
            drec[:, 2 * H:] = dhn
            if hm.shape[0] == 1:
                dhm = (drec @ self.R)[None]
            else:
                dhm = np.stack([drec[:, k * H:(k + 1) * H] @ self.R[k * H:(k + 1) * H] for k in range(3)])
        else:
            parts = [dxp[:, k * H:(k + 1) * H] @ self.R[k * H:(k + 1) * H] for k in range(2)] + [du * r]
            dhm = (parts[0] + parts[1] + parts[2])[None] if hm.shape[0] == 1 else np.stack(parts)
        return dhm, dh_direct, None

    def finish_backward(self):
        return self.DXP, self.DREC, np.stack([cache[5] for cache in self.caches]), {}


def make_kernel(w, dtype):
    return LSTMKernel(w, dtype) if w.cell == "lstm" else GRUKernel(w, dtype)
