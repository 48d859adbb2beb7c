"""Mask oracles and statistics: how the suite knows the dropout masks a framework used, and
what it concludes from many of them.

See DESIGN.md, "Three mask oracles": injection (the adapters' mask hooks), RNG replay (torch's,
in ``conformance/adapters/torch/replay.py``: framework knowledge lives with its adapters) and
probe-weight recovery (`probe`). `statistics`: the exact tests with their false-alarm
probabilities; `fingerprint`: a path's dropout semantics measured through the probes.
"""
