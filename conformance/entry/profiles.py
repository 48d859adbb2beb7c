"""The hypothesis profiles the suites run under (registered when the plugin loads).

dev       10 examples, random: plain `pytest` in the checkout (the root conftest loads it)
quick     10 examples, derandomized: a smoke run
ci        25 examples, derandomized: `make test`, `make report`, `rnn-conformance run` (default)
thorough  500 examples, random

derandomize: the examples are a fixed function of each test, the same on every run and machine.
No profile keeps an example database (``.hypothesis/``): a fresh clone and a warm checkout run
the very same cases, and a run leaves nothing behind; a failure prints its seed instead.
Choose one with ``--hypothesis-profile=NAME``.
"""
from __future__ import annotations

PROFILES = {
    "dev": dict(max_examples=10),
    "quick": dict(derandomize=True, max_examples=10, print_blob=True),
    "ci": dict(derandomize=True, max_examples=25, print_blob=True),
    "thorough": dict(max_examples=500),
}


def register():
    from hypothesis import settings

    for name, kw in PROFILES.items():
        settings.register_profile(name, deadline=None, database=None, **kw)
