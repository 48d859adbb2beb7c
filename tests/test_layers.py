"""The harness's layers, and imports that run one way (DESIGN.md "Layout").

    reference/              ground truth: imports nothing of this project
    conformance/core        cases, tolerances, timing, files, paths: no framework knowledge
    conformance/oracles     probe-weight oracle, statistics, fingerprints       -> core
    conformance/adapters    all framework knowledge: one subpackage per framework (adapters,
                            bench builders, the Keras-only helpers), the registry  -> core
    conformance/results     records, report, render, merge, gate, expectations, claims -> core
    conformance/checks      comparisons the suites run (adapter vs reference)  -> adapters, oracles, core
    conformance/entry       cli, runner, pytest plugin, hypothesis profiles     -> everything

Every import of this project's modules is read from the source (module level and inside
functions alike) and checked against that table; the module graph has no cycles; and a
framework's name appears as a subpackage of conformance/adapters only.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "core": {"core"},
    "oracles": {"oracles", "core"},
    "adapters": {"adapters", "core"},
    "results": {"results", "core"},
    "checks": {"checks", "adapters", "oracles", "core"},
    "entry": {"entry", "checks", "results", "adapters", "oracles", "core"},
    "": {"entry"},  # conformance/__init__.py, __main__.py
}


def modules():
    for path in sorted((ROOT / "conformance").rglob("*.py")) + sorted((ROOT / "reference").glob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield ".".join(parts), path, rel.name == "__init__"


def imports(name, path, is_pkg):
    """Absolute names of this project's modules that `path` imports anywhere in its body."""
    pkg = name if is_pkg else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t.split(".")[0] in ("conformance", "reference")}
    return out


def layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "conformance" else ("" if module == "conformance" else None)


KNOWN = {m for m, _, _ in modules()}


def test_imports_run_one_way():
    bad = []
    for name, path, is_pkg in modules():
        for target in imports(name, path, is_pkg):
            if target not in KNOWN:
                continue  # "from conformance.core import paths" also yields conformance.core.paths
            if name.startswith("reference"):
                if not target.startswith("reference"):
                    bad.append(f"{name} imports {target}: reference/ imports nothing of the harness")
                continue
            src = "" if name in ("conformance", "conformance.__main__") else layer(name)
            dst = "reference" if target.startswith("reference") else layer(target)
            if dst != "reference" and dst not in ALLOWED[src]:
                bad.append(f"{name} ({src or 'top'}) imports {target} ({dst})")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = {name: {t for t in imports(name, path, is_pkg) if t in KNOWN and t != name}
             for name, path, is_pkg in modules()}
    # a package importing its own submodules (re-exports) is not a cycle through the package
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = "open"
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            elif m not in state:
                visit(m, stack + [m])
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


FRAMEWORK_WORDS = ("torch", "keras", "tf_", "tensorflow", "flax", "jax", "onnx")


def test_framework_knowledge_lives_in_adapters():
    """No module outside conformance/adapters is named after a framework, and every framework
    subpackage of adapters holds that framework's adapters together with its bench builders."""
    stray = [m for m, _, _ in modules() if m.startswith("conformance.") and layer(m) != "adapters"
             and any(w in m.rpartition(".")[2] for w in FRAMEWORK_WORDS)]
    assert not stray, f"framework-named modules outside conformance/adapters: {stray}"
    subpackages = sorted(p.parent.name for p in (ROOT / "conformance" / "adapters").glob("*/__init__.py"))
    assert subpackages == ["flax", "jax", "keras", "onnxruntime", "tensorflow", "torch"]
    for sub in subpackages:
        assert (ROOT / "conformance" / "adapters" / sub / "bench.py").is_file(), f"{sub}: no bench builders"
