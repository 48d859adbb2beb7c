"""Root conftest: import path, the conformance plugin, and the hypothesis profiles.

Profiles: dev (default, fast), quick (deterministic and fewest examples: a smoke run), ci
(deterministic), thorough (many examples). Choose one with
`--hypothesis-profile=NAME` (hypothesis's own pytest option, which wins) or the environment
variable HYPOTHESIS_PROFILE.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hypothesis import settings  # noqa: E402

pytest_plugins = ["conformance.plugin"]

settings.register_profile("dev", max_examples=10, deadline=None)
# derandomize: examples are a fixed function of each test, the same on every run and machine;
# no example database, so a fresh clone and a warm checkout run the very same cases.
settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None,
                          print_blob=True, database=None)
settings.register_profile("quick", derandomize=True, max_examples=10, deadline=None,
                          print_blob=True, database=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
