"""Optional frameworks: import one or skip the test with a clear reason; look up versions.

Only a framework that is *absent* skips. One that is installed but fails to import (a broken
wheel, a missing shared library) raises: that is a finding, not a reason to skip.
"""
from __future__ import annotations

import importlib
import re
from importlib import metadata


def require(module_name: str, name: str | None = None):
    """Import and return `module_name`, or skip the calling test: "<name> is not installed"."""
    __tracebackhide__ = True  # pytest shows the caller's line as the skip location
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Skip only if the missing module is the one asked for (or a parent package of it).
        if e.name is None or not (module_name == e.name or module_name.startswith(e.name + ".")):
            raise
        import pytest

        pytest.skip(f"{name or module_name} is not installed")


def installed_version(dist_name: str) -> str | None:
    """Installed version of a distribution (e.g. "tensorflow-cpu"), None if absent. No import."""
    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return None


def exception_line(e, skip=(), limit=300):
    """"Type: first line" of an exception a framework raised: its message's first non-empty line,
    terminal colour codes removed, lines starting with a prefix in `skip` left out, at most
    `limit` characters."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(e).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(tuple(skip))]
    return f"{type(e).__name__}: {(lines or [''])[0][:limit]}"
