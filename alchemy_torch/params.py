"""Constructor arguments as the single source of an object's configuration.

Every configurable object (Resampler, extractors, methods, models) stores each constructor
argument verbatim under its own name; fitted state ends in ``_``. :class:`Params` then gives
``get_params`` / ``set_params`` (what scikit-learn ``clone`` and Hydra configs rely on),
equality of configuration and a ``repr`` that rebuilds the object.
"""

from __future__ import annotations

import inspect

__all__ = ["Params"]


class Params:
    """Mixin: parameters are the ``__init__`` arguments, read back from same-named attributes."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict:
        """Constructor arguments by name: ``type(x)(**x.get_params())`` rebuilds ``x``.

        ``deep`` adds ``name__param`` entries of nested objects that have ``get_params``.
        """
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update({f"{name}__{k}": v for k, v in value.get_params().items()})
        return params

    def set_params(self, **params) -> "Params":
        """Set constructor arguments (``name__param`` reaches into nested objects)."""
        valid = self._param_names()
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {valid}")
            if sub:
                getattr(self, name).set_params(**{sub: value})
            else:
                setattr(self, name, value)
        return self

    def __eq__(self, other) -> bool:
        """Same type and same parameters (fitted state is not compared)."""
        if type(other) is not type(self):
            return NotImplemented
        return self.get_params(deep=False) == other.get_params(deep=False)

    __hash__ = None  # mutable configuration: not hashable

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"
