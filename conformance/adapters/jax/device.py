"""Which JAX device a path runs on: "cpu" is the host CPU even on a machine whose default JAX
device is a GPU (so a CPU result is never a GPU result in disguise), "cuda" the first GPU
JAX sees; `DeviceUnavailable` when there is none. Used by every JAX-based adapter (the flax
ones and jax.experimental.rnn), around each jitted call: ``with on_device(device, name):``,
which on a GPU also sets ``jax.default_matmul_precision("highest")``: JAX's default lets float32
dots (and cuDNN) use TF32 on a GPU, about 3 decimal digits, and a float32 case asks for float32."""
from __future__ import annotations

import contextlib

from conformance.adapters.base import DeviceUnavailable
from conformance.core.devices import no_cuda


def gpus():
    """JAX's GPU devices; [] when there are none (jax.devices("gpu") raises then)."""
    import jax

    try:
        return list(jax.devices("gpu"))
    except RuntimeError:
        return []


def jax_device(device, name="this path"):
    """The jax Device for "cpu" / "cuda"; DeviceUnavailable for a GPU JAX cannot see."""
    import jax

    if device == "cpu":
        return jax.devices("cpu")[0]
    if device != "cuda":
        raise DeviceUnavailable(f"{name}: device {device!r} is not a JAX device this harness knows")
    found = gpus()
    if not found:
        raise DeviceUnavailable(no_cuda(f"no GPU visible to JAX: jax.devices('gpu') fails; {name} not run on CUDA"))
    return found[0]


@contextlib.contextmanager
def on_device(device, name="this path"):
    """jax.default_device(jax_device(device)) inside; on "cuda" float32 matmuls at "highest"
    precision as well (no TF32)."""
    import jax

    with contextlib.ExitStack() as stack:
        stack.enter_context(jax.default_device(jax_device(device, name)))
        if device == "cuda":
            stack.enter_context(jax.default_matmul_precision("highest"))
        yield
