"""rnn-conformance harness: report, pytest plugin, CLI (`python -m conformance`), helpers.

Importing the package imports no framework; adapters import theirs on use.
"""
__version__ = "0.1.0"
