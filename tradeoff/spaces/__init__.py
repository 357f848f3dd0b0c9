"""What can be tried: parameters, search spaces and the Configs they decode to."""

from tradeoff.spaces._params import Choice, Float, Int, Ordinal, Parameter
from tradeoff.spaces._space import Config, SearchSpace

__all__ = ["Choice", "Config", "Float", "Int", "Ordinal", "Parameter", "SearchSpace"]
