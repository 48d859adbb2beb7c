"""Root conftest of the checkout: import path, the conformance plugin, the default profile.

The plugin (conformance/entry/plugin.py) registers the hypothesis profiles
(conformance/entry/profiles.py: dev, quick, ci, thorough); here plain `pytest` gets `dev`
unless the environment variable HYPOTHESIS_PROFILE or `--hypothesis-profile=NAME` (which
wins) says otherwise. Where the package is installed, pytest loads the plugin through its
`pytest11` entry point and this file does not load it twice.
"""
import os
import sys
from importlib import metadata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PLUGIN = "conformance.entry.plugin"
_ENTRY_POINTS = {ep.value for ep in metadata.entry_points(group="pytest11")}
pytest_plugins = [] if PLUGIN in _ENTRY_POINTS else [PLUGIN]

from conformance.entry import profiles  # noqa: E402
from hypothesis import settings  # noqa: E402

profiles.register()
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
