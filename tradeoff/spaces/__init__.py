"""What can be tried: parameters, search spaces and the Configs they decode to.

Model-aware spaces (``QuantizationSpace``, ``PruningSpace``, ``ArchitectureSpace``,
``PEFTSpace``, ``ModelSpace``), the quantizers (``gptq_quantize``, ``rtn_quantize``), the
variant bank and the ``Workspace`` that assembles Configs need torch; they load on first use,
so importing this package stays light.
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
    "VariantBank": "tradeoff.spaces._bank",
    "export": "tradeoff.spaces._export",
    "load_compressed": "tradeoff.spaces._export",
    "Exported": "tradeoff.spaces._export",
    "Workspace": "tradeoff.spaces._workspace",
    "collect_hessians": "tradeoff.spaces._calibration",
    "gptq_quantize": "tradeoff.spaces._gptq",
    "rtn_quantize": "tradeoff.spaces._gptq",
    "tokens_needed": "tradeoff.spaces._calibration",
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
