"""What only a CUDA machine can show, beyond the registry-wide suites' ``@cuda`` cases.

`rnn-conformance gpu` runs every test marked ``gpu`` (this module, the ``@cuda`` parameters of
the registry-wide suites, the cuDNN dropout test of test_torch_dropout.py, the cuDNN
``jax.experimental.rnn.lstm``, test_keras_gpu.py and test_bench_gpu.py). Here:

- **Reduced precision on cuDNN** (`test_cudnn_reduced_precision`): torch ``nn.LSTM`` /
  ``nn.GRU`` in float16 and bfloat16 on CUDA, padded and packed, one and two layers,
  bidirectional, projection, against the float64 reference evaluated on the SAME
  half-precision-rounded weights, inputs and states, within
  ``tolerance(dtype, steps, fan_in, magnitude)`` -- the float32 formula with the dtype's
  machine epsilon (K = 7; the check that K covers half precision is table (c) of
  conformance/core/tolerances.py, measured on torch's CPU half kernels). Each call is
  profiled: anything but cuDNN is a failure (a silent fallback), never a pass.
- **CPU vs GPU agreement** (`test_cpu_gpu_agreement`): per path with a CUDA twin -- the 24
  torch paths (cuDNN), ``jax.experimental.rnn.lstm`` (cuDNN) against ``lstm_ref`` on the CPU,
  and the flax cells (XLA on the GPU) -- the same weights and inputs (every declared feature
  switched on, `full_case`) give outputs and gradients within the sum of the two sides'
  tolerances (each side is within its own tolerance of the reference, so the two must be
  within the sum; the registry-wide suites check each side against the reference).

On a machine without CUDA every case skips with a reason starting with
`conformance.core.devices.NO_CUDA`, before any work.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import reference
from conformance.adapters import registry
from conformance.adapters.base import DeviceUnavailable
from conformance.checks.parity import grad_errors, max_abs_errors
from conformance.core.adapter_strategies import case_shape, cotangents, full_case, lengths_of, rounded
from conformance.core.frameworks import installed_version, require
from conformance.core.tolerances import tolerance
from .test_gradient_parity import GRAD_FACTOR

pytestmark = pytest.mark.gpu

SEED = 20261203

# (cell, T, B, I, H, layers, bidirectional, proj_size, packed)
HALF_CASES = [
    ("lstm", 16, 8, 32, 32, 1, False, 0, False),
    ("lstm", 64, 8, 64, 64, 2, True, 0, False),
    ("lstm", 32, 8, 32, 64, 1, False, 16, False),
    ("lstm", 32, 8, 32, 32, 2, True, 0, True),
    ("gru", 16, 8, 32, 32, 1, False, 0, False),
    ("gru", 64, 8, 64, 64, 2, True, 0, False),
    ("gru", 32, 8, 32, 32, 2, True, 0, True),
]
HALF_DTYPES = ("float16", "bfloat16")


def _half_id(c):
    cell, T, B, I, H, L, bidir, proj, packed = c
    return (f"{cell}-T{T}-H{H}-L{L}{'-bidir' if bidir else ''}{f'-proj{proj}' if proj else ''}"
            f"{'-packed' if packed else ''}")


def torch_cuda():
    """torch, or a skip with the reason when CUDA / cuDNN cannot run here."""
    torch = require("torch")
    from conformance.adapters.torch.common import check_cuda

    try:
        check_cuda("torch.nn.LSTM/GRU", need_cudnn=True)
    except DeviceUnavailable as e:
        pytest.skip(str(e))
    return torch


def reduced_precision_run(torch, device, spec, dtype, seed=SEED):
    """One torch nn.LSTM / nn.GRU case in `dtype` ("float16", "bfloat16", or "float32") on
    `device` against the float64 reference on the same `dtype`-rounded values:
    {"err", "tol", "ratio", "kernel", "magnitude"}. Also run on the CPU (torch's CPU half
    kernels) to derive the tolerance (conformance/core/tolerances.py, table (c))."""
    from conformance.adapters.torch.common import kernel_ran
    from conformance.adapters.torch.replay import load_stack_into

    cell, T, B, I, H, L, bidir, proj, packed = spec
    tdt = getattr(torch, dtype)
    rng = np.random.default_rng(seed)
    kw = {"proj_size": proj} if proj else {}
    stack = reference.random_stack(rng, cell, I, H, L, bidir, **kw)

    def r(a):  # round to `dtype`, hold in float64: both sides then start from the same numbers
        return None if a is None else torch.as_tensor(np.asarray(a, np.float64)).to(tdt).to(torch.float64).numpy()

    stack = [[dataclasses.replace(w, **{k: r(getattr(w, k)) for k in w.array_names() if getattr(w, k) is not None})
              for w in layer] for layer in stack]
    n, hout = L * (2 if bidir else 1), stack[0][0].output_size
    x, h0 = r(rng.normal(size=(T, B, I))), r(rng.normal(size=(n, B, hout)))
    c0 = r(rng.normal(size=(n, B, H))) if cell == "lstm" else None
    lengths = None
    if packed:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T
    want = reference.run(stack, x, h0, c0, lengths=lengths)
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    m = cls(I, H, num_layers=L, bidirectional=bidir, **kw).to(device=device, dtype=tdt).eval()
    load_stack_into(m, stack)
    t = lambda a: torch.as_tensor(a, dtype=tdt, device=device)  # noqa: E731
    inp = t(x)
    if packed:
        inp = torch.nn.utils.rnn.pack_padded_sequence(inp, torch.as_tensor(lengths), enforce_sorted=False)
    hx = t(h0) if cell == "gru" else (t(h0), t(c0))
    with torch.no_grad():
        (out, state), kernel = kernel_ran(lambda: m(inp, hx))
    if packed:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    h_n, c_n = state if cell == "lstm" else (state, None)
    f64 = lambda v: None if v is None else v.detach().to(torch.float64).cpu().numpy()  # noqa: E731
    got = reference.Result(y=f64(out), h_n=f64(h_n), c_n=f64(c_n))
    errs = max_abs_errors(got, want)
    steps, fan_in = case_shape(stack, T)
    magnitude = float(np.max(np.abs(want.c_n))) if want.c_n is not None else 1.0
    tol = tolerance(dtype, steps, fan_in, magnitude=magnitude)
    err = max(errs.values())
    return {"err": err, "tol": tol, "ratio": err / tol, "kernel": kernel, "magnitude": magnitude, "errors": errs}


def _half_repro(spec, dtype):
    return "\n".join([
        "# from the project root, in an environment with torch on a CUDA machine",
        "import torch; from suites.test_gpu import reduced_precision_run",
        f"print(reduced_precision_run(torch, 'cuda', {spec!r}, {dtype!r}))",
    ])


@pytest.mark.framework("torch")
@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("spec", HALF_CASES, ids=[_half_id(c) for c in HALF_CASES])
def test_cudnn_reduced_precision(spec, dtype, conformance_record):
    cell = spec[0]
    rec = dict(adapter=f"torch.nn.{cell.upper()}", framework="torch", framework_version=installed_version("torch"),
               device="cuda", seed=SEED, repro=_half_repro(spec, dtype),
               feature=f"cuDNN {dtype}: outputs and final states ({_half_id(spec)})")
    try:
        torch = torch_cuda()
    except pytest.skip.Exception as e:
        conformance_record(**rec, reason=str(e))
        raise
    out = reduced_precision_run(torch, "cuda", spec, dtype)
    rec.update(max_abs_err=out["err"], tolerance=out["tol"], kernel=out["kernel"])
    conformance_record(**rec)
    assert out["kernel"] == "cuDNN", (f"torch.nn.{cell.upper()} in {dtype} on CUDA ran the {out['kernel']} kernel, "
                                      f"not cuDNN: a silent fallback (seed {SEED})\nrepro:\n{rec['repro']}")
    assert out["err"] <= out["tol"], (
        f"torch.nn.{cell.upper()} {dtype} on cuDNN: max |error| {out['err']:.3g} > tolerance {out['tol']:.3g} "
        f"({out['ratio']:.2f}x; per output {out['errors']}; seed {SEED})\nrepro:\n{rec['repro']}")


# ---------------------------------------------------------------- CPU vs GPU, same weights and inputs

JAX_GPU = "jax.experimental.rnn.lstm"


def agreement_pairs():
    """(name, cpu AdapterInfo, cuda AdapterInfo, frameworks) for every path with a CUDA twin."""
    out = []
    for info in registry.adapters():
        if "cuda" in info.devices:
            out.append((info.name, info, info, (info.framework,)))
        elif info.framework in ("flax.linen", "flax.nnx"):  # XLA on the GPU: the same adapter, device "cuda"
            out.append((info.name, info, dataclasses.replace(info, devices=("cpu", "cuda")), ("flax",)))
    ref = registry.get("jax.experimental.rnn.lstm_ref")
    out.append((f"{JAX_GPU} vs lstm_ref", ref, dataclasses.replace(ref, name=JAX_GPU, devices=("cuda",)), ("jax",)))
    return out


PAIRS = [pytest.param(cpu, gpu, id=name, marks=pytest.mark.framework(*fw))
         for name, cpu, gpu, fw in agreement_pairs()]


def agreement(cpu_info, gpu_info, seed=SEED, gpu_device="cuda"):
    """{"forward": (max |cpu - gpu|, tolerance), "gradients": (worst err / tolerance, name)} for
    `full_case` of the path; raises DeviceUnavailable where the GPU side cannot run
    (`gpu_device="cpu"` runs the comparison CPU against CPU: a check of this code, not of a GPU)."""
    gpu = registry.load(gpu_info, device=gpu_device)
    cpu = registry.load(cpu_info, device="cpu")
    case = full_case(cpu_info, seed=seed)
    stack, x, h0, c0 = rounded(case)
    dy, dh, dc = cotangents(case, stack)
    a, ga = cpu.vjp(stack, x, dy, dh, dc, h0, c0, **lengths_of(case))
    b, gb = gpu.vjp(stack, x, dy, dh, dc, h0, c0, **lengths_of(case))
    steps, fan_in = case_shape(stack, case.steps)
    tol = 2 * tolerance("float32", steps, fan_in)  # each side within one tolerance of the reference
    fwd = max(max_abs_errors(b, reference.Result(y=np.asarray(a.y, np.float64), h_n=np.asarray(a.h_n, np.float64),
                                                 c_n=None if a.c_n is None else np.asarray(a.c_n, np.float64)))
              .values())
    worst, name = 0.0, None
    for k, (err, mag) in grad_errors(gb, ga).items():
        ratio = err / (2 * GRAD_FACTOR * tolerance("float32", steps, fan_in, magnitude=mag))
        if ratio > worst:
            worst, name = ratio, k
    return {"forward": (fwd, tol), "gradients": (worst, name), "kernel": getattr(gpu, "kernel_of", lambda *a, **k: None)(
        stack, x, h0, c0, **lengths_of(case))}


@pytest.mark.parametrize("cpu_info, gpu_info", PAIRS)
def test_cpu_gpu_agreement(cpu_info, gpu_info, conformance_record):
    rec = dict(adapter=gpu_info.name, framework=gpu_info.framework,
               framework_version=installed_version(gpu_info.distribution), device="cuda", seed=SEED,
               feature="CPU vs GPU: same weights and inputs (every declared feature)",
               repro="\n".join([
                   "# from the project root, on a CUDA machine",
                   "import dataclasses; from suites.test_gpu import agreement_pairs, agreement",
                   f"cpu, gpu = next((c, g) for n, c, g, _ in agreement_pairs() if g.name == {gpu_info.name!r})",
                   "print(agreement(cpu, gpu))"]))
    require(cpu_info.framework.split(".")[0])
    for module in cpu_info.requires:
        require(module)
    try:
        out = agreement(cpu_info, gpu_info)
    except DeviceUnavailable as e:
        conformance_record(**rec, reason=str(e))
        pytest.skip(str(e))
    (err, tol), (gworst, gname) = out["forward"], out["gradients"]
    rec.update(max_abs_err=err, tolerance=tol, kernel=out["kernel"],
               reason=f"gradients: worst {gworst:.3g} of their tolerance ({gname})")
    conformance_record(**rec)
    assert err <= tol, (f"{gpu_info.name}: CPU and GPU outputs differ by {err:.3g} > {tol:.3g} (twice the float32 "
                        f"tolerance; seed {SEED})\nrepro:\n{rec['repro']}")
    assert gworst <= 1.0, (f"{gpu_info.name}: CPU and GPU gradients differ: {gname} at {gworst:.3g}x the sum of "
                           f"both sides' tolerances (seed {SEED})\nrepro:\n{rec['repro']}")


# ---------------------------------------------------------------- the machine

def gpu_facts(torch):
    """One line naming the GPU, driver-side CUDA and cuDNN as torch sees them (and JAX's devices)."""
    props = torch.cuda.get_device_properties(0)
    facts = [f"{props.name} ({props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor})",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"]
    try:
        import jax

        from conformance.adapters.jax.device import gpus

        facts.append(f"jax {jax.__version__}: {', '.join(str(d) for d in gpus()) or 'no GPU'}")
    except ImportError:
        facts.append("jax not installed")
    return "; ".join(facts)


@pytest.mark.framework("torch")
def test_gpu_environment(conformance_record):
    """The machine the GPU run ran on, as a record (the report's environment lists the CPU side)."""
    rec = dict(adapter="CUDA device", framework="torch", framework_version=installed_version("torch"), device="cuda",
               feature="GPU environment", repro="import torch; print(torch.cuda.get_device_properties(0))")
    try:
        torch = torch_cuda()
    except pytest.skip.Exception as e:
        conformance_record(**rec, reason=str(e))
        raise
    rec["reason"] = gpu_facts(torch)
    conformance_record(**rec)
    assert torch.cuda.device_count() >= 1
