"""``get_config`` / ``from_config`` for ``@dataclass`` configs, shared by the models' architecture
configs, the pipeline config and the training configs (:mod:`face_tracker_core.engine.config`).

Framework-free: importing it loads neither Keras nor the training engine.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, Optional, Type, TypeVar

from .errors import DataError

__all__ = ["DataclassConfig"]

D = TypeVar("D", bound="DataclassConfig")


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively: the form YAML and JSON hold."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_tuple_type(tp: Any) -> bool:
    """Whether a field annotation is a tuple (also inside ``Optional``)."""
    if tp is tuple or typing.get_origin(tp) is tuple:
        return True
    return any(_is_tuple_type(a) for a in typing.get_args(tp) if typing.get_origin(tp) is typing.Union)


class DataclassConfig:
    """``get_config`` / ``from_config`` / ``replace`` of a ``@dataclass`` config: the base of
    :class:`TrainingConfig`, and of the models' architecture configs (which have no run folder)."""

    def get_config(self) -> Dict[str, Any]:
        """Every field as plain Python values (what ``config.yaml`` of a run holds)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls: Type[D], d: Optional[Dict[str, Any]] = None) -> D:
        """Build from a mapping; missing keys keep their defaults.

        Raises:
            DataError: a key that is not a field of this config.
        """
        d = dict(d or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(fields)
        if unknown:
            raise DataError(f"unknown {cls.__name__} keys: {sorted(unknown)} (known: {sorted(fields)})")
        hints = typing.get_type_hints(cls)
        for key, value in d.items():
            if isinstance(value, list) and _is_tuple_type(hints.get(key)):
                d[key] = tuple(value)
        return cls(**d)

    def replace(self: D, **changes: Any) -> D:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)
