"""A checksum of modules' weights: equal exactly when every tensor (and its name) is equal."""

from __future__ import annotations

import hashlib

from torch import nn


def checksum(*modules: nn.Module, extra: str = "") -> str:
    """SHA-256 of the named tensors of ``modules`` in order (as float32), then ``extra``."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().float().numpy().tobytes())
    h.update(extra.encode())
    return h.hexdigest()
