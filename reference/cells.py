"""One time step of each cell, forward and backward, on prepared weights.

A kernel holds one layer-direction's weights, gate blocks in the canonical order. For speed the LSTM evaluates all four gates with one sigmoid: the candidate's
pre-activation is doubled (`scale_inputs`) and tanh(a) = 2*sigmoid(2a) - 1. The layer loop (`rnn.py`) feeds it
    xp_t  (B, G*H)   the input projection of step t, biases already added
    hm    (G', B, Hout)  h_{t-1} after the recurrent mask; G' = 1 (one mask for all gates) or G
and gets back the new state plus a cache for the backward step. Masks, padding and the
order of steps are the layer loop's business, not the cell's.
"""
from __future__ import annotations

import numpy as np


def sigmoid_(a):
    """In-place logistic function 1 / (1 + exp(-a)); exp overflow (a < -709) correctly gives 0,
    so callers run under np.errstate(over="ignore")."""
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1.0
    np.reciprocal(a, out=a)
    return a


def _bias(b, size, dtype):
    return np.zeros(size, dtype) if b is None else b


class LSTMKernel:
    gates = 4

    def __init__(self, w, dtype):
        H = w.hidden_size
        self.H, self.hout = H, w.output_size
        self.W, self.R = w.W, w.R
        self.RT = np.array(w.R.T, order="C")  # a copy: scaled in place below
        self.RT[:, 2 * H:3 * H] *= 2  # doubled candidate pre-activation, see module docstring
        bias = _bias(w.b_x, 4 * H, dtype) + _bias(w.b_h, 4 * H, dtype)
        bias[H:2 * H] += w.forget_bias
        self.bias = bias
        self.peep = w.peephole  # rows i, f, o
        self.Wp = w.W_proj
        self.clip = w.cell_clip

    def scale_inputs(self, xp):
        xp[..., 2 * self.H:3 * self.H] *= 2

    def recurrent(self, hm):
        """hm (G', B, Hout) -> (B, 4H): each gate block uses its own masked h."""
        if hm.shape[0] == 1:
            return hm[0] @ self.RT
        H = self.H
        return np.concatenate([hm[g] @ self.RT[:, g * H:(g + 1) * H] for g in range(4)], axis=1)

    def step(self, xp_t, h, c, hm):
        H = self.H
        a = self.recurrent(hm)
        a += xp_t
        if self.peep is not None:
            a[:, :H] += self.peep[0] * c
            a[:, H:2 * H] += self.peep[1] * c
            sigmoid_(a[:, :3 * H])
        else:
            sigmoid_(a)
        i, f, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H]
        g *= 2.0
        g -= 1.0
        c_new = f * c
        c_new += i * g
        clipped = None
        if self.clip is not None:
            clipped = np.abs(c_new) > self.clip
            np.clip(c_new, -self.clip, self.clip, out=c_new)
        if self.peep is not None:
            a[:, 3 * H:] += self.peep[2] * c_new
            sigmoid_(a[:, 3 * H:])
        tc = np.tanh(c_new)
        m = a[:, 3 * H:] * tc
        h_new = m @ self.Wp.T if self.Wp is not None else m
        return h_new, c_new, (a, c, c_new, clipped, tc, m, hm)

    def step_back(self, cache, dh_new, dc_new, grads):
        """Returns (dxp, drec, dhm, dh_direct, dc_prev); accumulates peephole/projection grads."""
        a, c_prev, c_new, clipped, tc, m, hm = cache
        H = self.H
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        if self.Wp is not None:
            grads["W_proj"] += dh_new.T @ m
            dm = dh_new @ self.Wp
        else:
            dm = dh_new
        da = np.empty_like(a)
        da_i, da_f, da_g, da_o = da[:, :H], da[:, H:2 * H], da[:, 2 * H:3 * H], da[:, 3 * H:]
        np.multiply(dm * tc, o * (1 - o), out=da_o)
        dc = dc_new + dm * o * (1 - tc * tc)
        if self.peep is not None:
            dc += da_o * self.peep[2]
            grads["peephole"][2] += (da_o * c_new).sum(0)
        if clipped is not None:
            dc[clipped] = 0
        np.multiply(dc * g, i * (1 - i), out=da_i)
        np.multiply(dc * c_prev, f * (1 - f), out=da_f)
        np.multiply(dc * i, 1 - g * g, out=da_g)
        dc_prev = dc * f
        if self.peep is not None:
            dc_prev += da_i * self.peep[0] + da_f * self.peep[1]
            grads["peephole"][0] += (da_i * c_prev).sum(0)
            grads["peephole"][1] += (da_f * c_prev).sum(0)
        if hm.shape[0] == 1:
            dhm = (da @ self.R)[None]
        else:
            dhm = np.stack([da[:, k * H:(k + 1) * H] @ self.R[k * H:(k + 1) * H] for k in range(4)])
        return da, da, dhm, None, dc_prev

    def rec_inputs(self, cache):
        return cache[-1]


class GRUKernel:
    gates = 3

    def __init__(self, w, dtype):
        H = w.hidden_size
        self.H = self.hout = H
        self.W, self.R = w.W, w.R
        self.RT = np.ascontiguousarray(w.R.T)
        self.reset_after = w.reset_after
        b_x, b_h = _bias(w.b_x, 3 * H, dtype), _bias(w.b_h, 3 * H, dtype)
        bias = b_x.copy()
        bias[:2 * H] += b_h[:2 * H]
        self.b_hn = b_h[2 * H:]
        if not self.reset_after:  # the candidate's recurrent bias sits outside r: fold it
            bias[2 * H:] += self.b_hn
        self.bias = bias

    def scale_inputs(self, xp):
        pass

    def _rec(self, hm, lo, hi):
        """Recurrent matmul for the gate blocks lo..hi-1."""
        H = self.H
        if hm.shape[0] == 1:
            return hm[0] @ self.RT[:, lo * H:hi * H]
        return np.concatenate([hm[k] @ self.RT[:, k * H:(k + 1) * H] for k in range(lo, hi)], axis=1)

    def step(self, xp_t, h, c, hm):
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
        return h_new, None, (r, z, n, hn_lin, hm, rec_in, h)

    def step_back(self, cache, dh_new, dc_new, grads):
        r, z, n, hn_lin, hm, rec_in, h_prev = cache
        H = self.H
        dz = dh_new * (h_prev - n)
        dh_direct = dh_new * z
        da_n = dh_new * (1 - z) * (1 - n * n)
        dxp = np.empty((dh_new.shape[0], 3 * H), dtype=dh_new.dtype)
        dxp[:, 2 * H:] = da_n
        if self.reset_after:
            dhn = da_n * r
            dr = da_n * hn_lin
        else:
            du = da_n @ self.R[2 * H:]
            dr = du * hm[-1]
        np.multiply(dr, r * (1 - r), out=dxp[:, :H])
        np.multiply(dz, z * (1 - z), out=dxp[:, H:2 * H])
        if self.reset_after:
            drec = dxp.copy()
            drec[:, 2 * H:] = dhn
            if hm.shape[0] == 1:
                dhm = (drec @ self.R)[None]
            else:
                dhm = np.stack([drec[:, k * H:(k + 1) * H] @ self.R[k * H:(k + 1) * H] for k in range(3)])
        else:
            drec = dxp
            parts = [dxp[:, k * H:(k + 1) * H] @ self.R[k * H:(k + 1) * H] for k in range(2)] + [du * r]
            dhm = (parts[0] + parts[1] + parts[2])[None] if hm.shape[0] == 1 else np.stack(parts)
        return dxp, drec, dhm, dh_direct, None

    def rec_inputs(self, cache):
        return cache[5]


def make_kernel(w, dtype):
    return LSTMKernel(w, dtype) if w.cell == "lstm" else GRUKernel(w, dtype)
