"""Typed configs: dataclasses with defaults, YAML files and ``key=value`` overrides.

Every command of the CLI is driven by one dataclass. Fields carry their help text in
``field(metadata={"help": ...})``; nested dataclasses are addressed with dotted keys
(``optim.lr=1e-3``). Precedence, lowest first: dataclass defaults, the YAML file, then
``key=value`` overrides and ``--flags`` in command-line order. Numbers are checked when set (see
``opt``): bounds, and no NaN.
``aliases`` (``load_config``) are other names of keys, taken in the file and the overrides alike
(``vjepa2.vocabulary`` holds the CLI's); a deprecated one prints one line on stderr.
Mistakes (an unknown key, a value of the wrong type or out of range, a missing or malformed file)
are ``UserError``s naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vjepa2.atomic import atomic_open
from vjepa2.errors import MissingPathError, UnknownKeyError, UserError

T = TypeVar("T")


def opt(
    default: Any = dataclasses.MISSING,
    help: str = "",
    positional: bool = False,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    **kw,
) -> Any:
    """A dataclass field with help text; lists and dicts get a default factory. Numbers (and the
    numbers of a list) are checked when set: ``min`` / ``max`` bound them, ``above`` is a bound they
    must exceed (a rate, a learning rate); without ``min`` a number whose default is not negative
    may not be negative (counts, sizes, steps, seeds, rates). NaN is never a value; infinity only
    where the default is infinite."""
    meta = {"help": help, "positional": positional, "min": min, "max": max, "above": above}
    if isinstance(default, (list, dict, tuple)) and not isinstance(default, tuple):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    if dataclasses.is_dataclass(default) and isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def parse_value(text: str, tp: Any) -> Any:
    """Turn command-line text into a value of type ``tp`` (YAML syntax for lists)."""
    tp, optional = _unwrap_optional(tp)
    if optional and text.lower() in ("none", "null", ""):
        return None
    origin = typing.get_origin(tp)
    if tp is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {text!r}")
    if tp in (int, float, str):
        try:
            return tp(text)
        except ValueError:
            raise ValueError(f"expected {'an integer' if tp is int else 'a number'}, got {text!r}") from None
    if origin in (list, tuple):
        value = yaml.safe_load(text)
        if not isinstance(value, list):
            value = [part for part in str(text).split(",") if part != ""]
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [coerce(v, item_tp) for v in value]
    return coerce(yaml.safe_load(text), tp)


def coerce(value: Any, tp: Any) -> Any:
    """Check and convert a YAML value to ``tp``; raises ValueError with the expected type."""
    tp, optional = _unwrap_optional(tp)
    if value is None and optional:
        return None
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [coerce(v, item_tp) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and tp in (int, float, bool):
        return parse_value(value, tp)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ValueError(f"expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from a (possibly partial) nested dict; unknown keys are an error."""
    cfg = cls()
    update(cfg, data, where)
    return cfg


def update(cfg: Any, data: dict[str, Any], where: str = "") -> Any:
    hints = _field_types(type(cfg))
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in data.items():
        key = key.replace("-", "_")
        if key not in fields:
            raise UnknownKeyError(f"{where}unknown config key {key!r}; known keys: {sorted(fields)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            update(current, value, f"{where}{key}.")
        else:
            try:
                setattr(cfg, key, _checked(fields[key], coerce(value, hints[key])))
            except ValueError as err:
                raise UserError(f"{where}{key}: {err}") from None
    return cfg


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _default_values(f: dataclasses.Field) -> list:
    if f.default is not dataclasses.MISSING:
        return [f.default]
    if f.default_factory is not dataclasses.MISSING:
        made = f.default_factory()
        if isinstance(made, list):
            return made
    return []


def minimum(f: dataclasses.Field) -> float | None:
    """The smallest value of a numeric field (see ``opt``), None when it has no lower bound."""
    if f.metadata.get("min") is not None:
        return f.metadata["min"]
    defaults = [v for v in _default_values(f) if _is_number(v)]
    if defaults and all(v >= 0 for v in defaults) and f.metadata.get("above") is None:
        return 0
    return None


def _check_number(f: dataclasses.Field, value: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        infinite = any(_is_number(v) and math.isinf(v) for v in _default_values(f))
        if math.isnan(value) or not infinite:
            raise ValueError(f"must be a finite number, got {value}")
    low, high, above = minimum(f), f.metadata.get("max"), f.metadata.get("above")
    if low is not None and value < low:
        raise ValueError(f"must be {low} or more, got {value}")
    if above is not None and value <= above:
        raise ValueError(f"must be more than {above}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"must be {high} or less, got {value}")


def _checked(f: dataclasses.Field, value: Any) -> Any:
    for item in value if isinstance(value, list) else [value]:
        if _is_number(item):
            _check_number(f, item)
    return value


def set_dotted(cfg: Any, dotted: str, text: str) -> None:
    """Apply one ``a.b.c=value`` override given as text."""
    *parents, leaf = dotted.replace("-", "_").split(".")
    node = cfg
    for name in parents:
        if not hasattr(node, name) or not dataclasses.is_dataclass(getattr(node, name)):
            raise UnknownKeyError(f"unknown config section {name!r} in {dotted!r}")
        node = getattr(node, name)
    hints = _field_types(type(node))
    fields = {f.name: f for f in dataclasses.fields(node)}
    if leaf not in fields:
        raise UnknownKeyError(f"unknown config key {dotted!r}; known keys here: {sorted(fields)}")
    try:
        setattr(node, leaf, _checked(fields[leaf], parse_value(text, hints[leaf])))
    except ValueError as err:
        raise UserError(f"{dotted}: {err}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}")
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a YAML file ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config file must hold a mapping at the top level")
    return data


Aliases = Mapping[str, tuple[str, bool]]  # old dotted key -> (new dotted key, deprecated)


def note_renamed(old: str, new: str) -> None:
    """The one line a deprecated option name prints on stderr."""
    print(f"{old} is now {new}", file=sys.stderr)


def rename_keys(data: dict[str, Any], aliases: Aliases, where: str = "") -> dict[str, Any]:
    """``data`` (a nested mapping from a YAML file) with each alias key moved to its new key; a
    deprecated one prints a note. Both the old and the new key given is a ``UserError``."""
    for old, (new, deprecated) in aliases.items():
        *parents, leaf = old.split(".")
        node = data
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        key = next((k for k in (leaf, leaf.replace("_", "-")) if k in node), None)
        if key is None:
            continue
        value = node.pop(key)
        *new_parents, new_leaf = new.split(".")
        target = data
        for name in new_parents:
            target = target.setdefault(name, {})
        if new_leaf in target or new_leaf.replace("_", "-") in target:
            raise UserError(f"{where}{new} is given twice, as {old} and as {new}; give it once")
        target[new_leaf] = value
        if deprecated:
            note_renamed(f"{where}{old}", new)
    return data


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] = (), aliases: Aliases | None = None
) -> T:
    """Defaults, then the YAML file at ``path``, then ``key=value`` overrides. ``aliases``: other
    names of keys (``vjepa2.vocabulary.aliases``), taken in the file and the overrides alike."""
    aliases = aliases or {}
    cfg = cls()
    if path:
        update(cfg, rename_keys(load_yaml(path), aliases, f"{path}: "), f"{path}: ")
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.replace("-", "_")
        if key in aliases:
            new, deprecated = aliases[key]
            if deprecated:
                note_renamed(f"{key}=", f"{new}=")
            key = new
        set_dotted(cfg, key, text)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_yaml(cfg: Any, path: str | Path) -> None:
    with atomic_open(Path(path), "w") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)


def iter_fields(cls: type, prefix: str = "", defaults: Any = None):
    """Yield (dotted name, type, default, help, positional) for every leaf field of ``cls``
    (the defaults of a section are those its parent gives it, as ``cls()`` makes them)."""
    hints = _field_types(cls)
    defaults = cls() if defaults is None else defaults
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        default = getattr(defaults, f.name)
        if dataclasses.is_dataclass(default):
            yield from iter_fields(type(default), f"{prefix}{f.name}.", default)
        else:
            yield (
                f"{prefix}{f.name}",
                tp,
                default,
                f.metadata.get("help", ""),
                f.metadata.get("positional", False),
            )
