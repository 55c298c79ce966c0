"""Typed training configs: one base for every model family's config dataclass.

A family declares its settings as a ``@dataclasses.dataclass`` subclass of :class:`TrainingConfig`
and gets, with the same behaviour everywhere:

* ``get_config()`` -> plain dict (tuples as lists: what YAML/JSON hold) and ``from_config(d)``
  (unknown keys are an error naming the known ones; list values of tuple fields become tuples);
* ``from_file(path, overrides)``: a YAML/JSON file plus ``key=value`` overrides (``model.neck=48``
  nests, values parsed as YAML), the way ``face-tracker train <family> --config F --set K=V`` reads it;
* ``to_yaml(path)``.

Every config has ``name`` and ``runs_root``; the run folder is ``<runs_root>/<task>/<name>/``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Optional, Sequence, Type, TypeVar

from ..dataclass_config import DataclassConfig
from ..errors import DataError

__all__ = ["DataclassConfig", "TrainingConfig", "load_config_file", "apply_overrides"]

C = TypeVar("C", bound="TrainingConfig")


def load_config_file(path: str) -> Dict[str, Any]:
    """Read a YAML or JSON config file.

    Raises:
        DataError: unreadable or not a mapping (the file is named).
    """
    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
        if path.endswith((".yaml", ".yml")):
            import yaml

            cfg = yaml.safe_load(text)
        else:
            cfg = json.loads(text)
    except Exception as exc:  # yaml / json / OS errors alike: one clear line
        raise DataError(f"{path}: cannot read config ({exc})") from exc
    if not isinstance(cfg, dict):
        raise DataError(f"{path}: config must be a mapping, got {type(cfg).__name__}")
    return cfg


def apply_overrides(d: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """``key=value`` overrides into ``d`` (in place, returned); values are parsed as YAML and dotted
    keys nest (``model.neck=48`` sets ``d["model"]["neck"]``).

    Raises:
        DataError: an item without ``=``.
    """
    import yaml

    for item in overrides:
        if "=" not in item:
            raise DataError(f"override '{item}' is not KEY=VALUE")
        key, value = item.split("=", 1)
        target = d
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = yaml.safe_load(value)
    return d


@dataclasses.dataclass
class TrainingConfig(DataclassConfig):
    """Base of every family's training config.

    Attributes:
        name: run name: the folder ``<runs_root>/<task>/<name>/``.
        runs_root: parent of the task folders.
    """

    name: str = "run"
    runs_root: str = "runs"

    @classmethod
    def from_file(cls: Type[C], path: Optional[str] = None, overrides: Sequence[str] = ()) -> C:
        """A YAML/JSON file (or nothing: the defaults) plus ``key=value`` overrides."""
        d: Dict[str, Any] = load_config_file(path) if path else {}
        return cls.from_config(apply_overrides(d, overrides))

    @classmethod
    def from_options(cls: Type[C], path: Optional[str] = None, options: Optional[Dict[str, Any]] = None,
                     overrides: Sequence[str] = ()) -> C:
        """How a CLI combines ``--config``, its own options and ``--set``: a YAML/JSON file (or nothing),
        then ``options`` (config key -> value; None: not given, the file's value or the default stays),
        then ``key=value`` overrides."""
        d: Dict[str, Any] = load_config_file(path) if path else {}
        d.update({k: v for k, v in (options or {}).items() if v is not None})
        return cls.from_config(apply_overrides(d, overrides))

    def to_yaml(self, path: str) -> str:
        """Write :meth:`get_config` as YAML; returns ``path``."""
        import yaml

        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(self.get_config(), fh, sort_keys=True)
        return path
