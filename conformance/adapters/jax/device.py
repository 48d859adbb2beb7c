"""Which JAX device a path runs on: "cpu" is the host CPU even on a machine whose default JAX
device is a GPU (so a CPU result is never a GPU result in disguise), "cuda" the first GPU
JAX sees; `DeviceUnavailable` when there is none. Used by every JAX-based adapter (the flax
ones and jax.experimental.rnn), around each jitted call: ``with jax.default_device(dev):``."""
from __future__ import annotations

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
