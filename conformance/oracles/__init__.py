"""Mask oracles: ways for the suite to know the dropout masks a framework used.

See DESIGN.md, "Three mask oracles": injection, RNG replay, probe-weight recovery.
`torch_replay` is the RNG-replay oracle for torch's CPU inter-layer dropout.
"""
