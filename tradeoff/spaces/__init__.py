"""What can be tried: parameters, search spaces and the Configs they decode to.

Model-aware spaces (``QuantizationSpace``, ``PruningSpace``, ``ArchitectureSpace``,
``PEFTSpace``, ``ModelSpace``) need torch; they load on first use, so importing this package
stays light.
"""

from importlib import import_module
from typing import Any

from tradeoff.spaces._params import Choice, Float, Int, Ordinal, Parameter
from tradeoff.spaces._space import Config, SearchSpace

_LAZY = {
    "ArchitectureSpace": "tradeoff.spaces._arch",
    "ModelSpace": "tradeoff.spaces._model",
    "PEFTSpace": "tradeoff.spaces._peft",
    "PruningSpace": "tradeoff.spaces._prune",
    "QuantizationSpace": "tradeoff.spaces._quant",
    "to_int8_runtime": "tradeoff.spaces._quant",
    "QuantInfo": "tradeoff.spaces._model",
    "PruneInfo": "tradeoff.spaces._model",
    "STAGES": "tradeoff.spaces._model",
    "select_layers": "tradeoff.spaces._model",
}

__all__ = ["Choice", "Config", "Float", "Int", "Ordinal", "Parameter", "SearchSpace", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tradeoff.spaces' has no attribute {name!r}")
