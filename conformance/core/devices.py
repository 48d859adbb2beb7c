"""Devices: the one phrase every CUDA case skips with on a machine without CUDA.

`rnn-conformance gpu` (conformance.entry.gpu) runs the tests marked ``gpu``; on a machine
without CUDA each CUDA case must skip with a reason that starts with `NO_CUDA`, so that the
dry run in ``make test`` can tell "skipped because there is no GPU" from anything else.
Nothing here knows a framework: each adapter decides availability its own way
(``torch.cuda.is_available()``, ``jax.devices("gpu")``) and words its reason with `no_cuda`.
"""
from __future__ import annotations

NO_CUDA = "CUDA is not available on this machine"


def no_cuda(detail: str | None = None) -> str:
    """'CUDA is not available on this machine' plus ' (detail)' when given."""
    return NO_CUDA + (f" ({detail})" if detail else "")
