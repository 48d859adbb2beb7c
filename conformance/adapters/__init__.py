"""Adapters: one module per framework path, each importing its framework only when used.

The API (`AdapterInfo`, the `Adapter` protocol, `supports`, `DeviceUnavailable`,
`UnsupportedCase`, the `FEATURES` vocabulary) lives in `base.py` and is re-exported here;
the declarations of the built-in paths live in ``conformance/registry.py``.
"""
from .base import (CELLS, DTYPES, FEATURES, Adapter, AdapterInfo, BaseAdapter, DeviceUnavailable,
                   UnsupportedCase, required_features, supports)

__all__ = ["CELLS", "DTYPES", "FEATURES", "Adapter", "AdapterInfo", "BaseAdapter", "DeviceUnavailable",
           "UnsupportedCase", "required_features", "supports"]
