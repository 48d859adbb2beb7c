"""The imports inside repro snippets (and docstring examples) name modules and names that exist.

Repros are Python text the suites print and record; nothing runs them in a normal test run, so a
moved module (the layered layout: conformance/{core,oracles,adapters,...}) leaves them quietly
broken. Every string literal of suites/ and conformance/ is scanned for ``from X import a, b``
and ``import X`` of the project's own packages; each module must exist and each name be a
submodule or a top-level name of it. Nothing is imported (the checkout's sources are parsed), so
this needs no framework and runs in the minimal venv too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWN = r"(?:conformance|reference|suites)(?:\.\w+)*"
FROM = re.compile(rf"\bfrom\s+({OWN})\s+import\s+([\w ,]+)")
IMPORT = re.compile(rf"(?:^|[;\n]|\bpython -c \"?)\s*import\s+({OWN}(?:\s*,\s*\w+(?:\.\w+)*)*)")


def strings(path):
    """(line, text) of every string literal; an f-string's placeholders become "{}"."""
    tree = ast.parse(path.read_text(), str(path))
    inner = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inner:
            yield node.lineno, node.value


def module_file(name):
    """The source of module `name` of the checkout ("" for a folder without __init__.py), None if none."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return str(candidate)
    return "" if base.is_dir() else None


def top_level_names(origin):
    tree = ast.parse(Path(origin).read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def problems_of(text):
    out = []
    for mod, names in FROM.findall(text):
        origin = module_file(mod)
        if origin is None:
            out.append(f"no module {mod}")
            continue
        for name in (n.split(" as ")[0].strip() for n in names.split(",")):
            if not name or name == "*" or module_file(f"{mod}.{name}") is not None:
                continue
            if not origin.endswith(".py") or name not in top_level_names(origin):
                out.append(f"{mod} has no {name}")
    for group in IMPORT.findall(text):
        out += [f"no module {m.strip()}" for m in group.split(",")
                if re.fullmatch(OWN, m.strip()) and module_file(m.strip()) is None]
    return out


FILES = sorted(p.relative_to(ROOT).as_posix() for d in ("suites", "conformance") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("name", FILES)
def test_imports_in_strings_resolve(name):
    bad = [f"{name}:{line}: {p}" for line, text in strings(ROOT / name) for p in problems_of(text)]
    assert not bad, "\n".join(bad)


def test_the_scan_finds_what_it_should():
    assert problems_of("from conformance import registry") == ["conformance has no registry"]
    assert problems_of("import numpy as np; from conformance.adapters import registry, nosuch") == [
        "conformance.adapters has no nosuch"]
    assert problems_of('python -c "import conformance.nosuch; x"') == ["no module conformance.nosuch"]
    assert problems_of("from conformance.oracles import probe as P\nfrom reference import layouts") == []
