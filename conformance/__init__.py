"""rnn-conformance: the harness that runs the conformance suites against installed frameworks.

Layers (bottom up; imports run one way, tests/test_layers.py checks it):

    core/      cases and strategies, tolerances, timing, atomic files, where the data lives
    oracles/   the probe-weight mask oracle, the statistics, dropout fingerprints
    adapters/  all framework knowledge: base API and registry, then one subpackage per
               framework (torch, keras, tensorflow, flax, jax, onnxruntime) holding its
               adapters, its bench builders and its own helpers (Keras: coverage,
               cross-backend runs, strategies, kernel decisions)
    results/   records and report, render, merge, gate, expectations, claims ledger
    checks/    the comparisons the suites run (adapter vs reference)
    entry/     the command line (`rnn-conformance`, `python -m conformance`), the runner,
               the pytest plugin, the hypothesis profiles

Importing the package imports no framework; adapters import theirs on use.
"""
__version__ = "0.2.0"
