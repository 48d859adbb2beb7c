"""The gradient-parity suite can fail: run it (as a user would, with --adapter) on an outside
copy of the torch nn.LSTM path whose `vjp` is honest, and on one whose `vjp` swaps a single
pair of rows (unit 0 of gates i and f) in the first layer's input-weight gradient.
"""
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SOURCE = textwrap.dedent('''
    from dataclasses import replace
    from conformance.adapters import registry
    from conformance.adapters.torch.nn import TorchRNN

    INFO = replace(registry.get("torch.nn.LSTM"), name="mygrads.LSTM", factory=__name__ + ":make")
    BROKEN = replace(INFO, name="mygrads.BrokenLSTM")


    class SwappedGradRows(TorchRNN):
        def vjp(self, *args, **kwargs):
            result, grads = super().vjp(*args, **kwargs)
            w = grads.weights[0][0]
            H = w.hidden_size
            W = w.W.copy()
            W[[0, H]] = W[[H, 0]]
            grads.weights[0][0] = replace(w, W=W)
            return result, grads


    def make(info, *, device="cpu", dtype="float32"):
        return (SwappedGradRows if info.name == BROKEN.name else TorchRNN)(info, device=device, dtype=dtype)
''')


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_gradient_suite_passes_honest_and_catches_swapped_rows(tmp_path):
    pkg = tmp_path / "site" / "mygrads"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(SOURCE)
    report = tmp_path / "report.json"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{pkg.parent}:{ROOT}"}
    r = subprocess.run([sys.executable, "-m", "pytest", "suites/test_gradient_parity.py", "-k", "mygrads",
                        "--adapter", "mygrads.mod:INFO", "--adapter", "mygrads.mod:BROKEN", "-p", "no:cacheprovider",
                        "--hypothesis-profile=ci", f"--conformance-report={report}"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    recs = {rec["adapter"]: rec for rec in json.loads(report.read_text())["results"] if rec["device"] == "cpu"}
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert recs["mygrads.LSTM"]["outcome"] == "passed", recs["mygrads.LSTM"]
    broken = recs["mygrads.BrokenLSTM"]
    assert broken["outcome"] == "failed" and "gradients differ from the reference" in broken["reason"], broken
    assert "W[0][0]" in r.stdout and "seed=" in r.stdout and ".vjp(stack, x, dy, dh, dc" in broken["repro"]
