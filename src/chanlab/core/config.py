"""Typed experiment configurations with presets and dotted ``key=value`` overrides.

A configuration is a (possibly nested) dataclass whose fields have simple types: ``int``,
``float``, ``bool``, ``str``, ``tuple[...]``/``list[...]`` of those, ``Optional`` of those,
or another config dataclass. Overrides address fields by dotted path::

    cfg = apply_overrides(cfg, ["train.lr=3e-4", "data.n_ant=64", "model.widths=(32,64)"])

An unknown key or a value of the wrong type raises :class:`ConfigError` naming the full dotted
key (and, for an unknown key, the valid keys). On the command line a tuple or list may be given
as a bare comma list: ``--set data.models=A,D`` is ``("A", "D")``.

A field may declare the values it allows in its metadata, checked for every element of a tuple::

    models: tuple[str, ...] = field(default=("A", "D"), metadata={"choices": ("A", "B", "C", "D", "E")})
    baselines: tuple[str, ...] = field(default=..., metadata=choices_from("chanlab.gridization.baselines",
                                                                           "BASELINES"))

``choices`` is a collection, or a function of no arguments returning one (looked up when a value is
set, so that a config class need not import the module that knows the allowed values).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from chanlab.core.errors import ConfigError

C = TypeVar("C")

_SCALARS = (bool, int, float, str)


def is_config(obj: Any) -> bool:
    """True for a config dataclass instance or class."""
    return dataclasses.is_dataclass(obj)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def flat_fields(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"dotted.key": type}`` for every leaf field of a config (class or instance)."""
    cls = cfg if isinstance(cfg, type) else type(cfg)
    out: dict[str, Any] = {}
    for name, tp in _field_types(cls).items():
        key = f"{prefix}{name}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out.update(flat_fields(tp, key + "."))
        else:
            out[key] = tp
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of a config (tuples become lists)."""
    return dataclasses.asdict(cfg)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert losslessly where sensible."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise ConfigError(f"{key}: expected a {origin.__name__} of values, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            items = [coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return origin(items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_dict(tp, value, prefix=key + ".")
        raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def _sequence_type(tp: Any) -> Any:
    """The ``tuple[...]``/``list[...]`` inside ``tp`` (``tp`` itself, or the non-None arm of an
    Optional); None when ``tp`` is no sequence type."""
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return tp
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(arms) == 1 and typing.get_origin(arms[0]) in (tuple, list):
            return arms[0]
    return None


def _item_types(seq_tp: Any, n: int) -> list[Any] | None:
    """The element type of each of ``n`` items of ``seq_tp``; None when the items are not scalars
    (a bare comma list then means nothing sensible)."""
    args = typing.get_args(seq_tp)
    if typing.get_origin(seq_tp) is tuple and args and args[-1] is not Ellipsis:
        item_types = list(args) if len(args) == n else None
    else:
        item_types = [args[0] if args else Any] * n
    if item_types is None:
        return None
    for t in item_types:
        arms = [a for a in typing.get_args(t) if a is not type(None)] \
            if typing.get_origin(t) in (typing.Union, types.UnionType) else [t]
        if not all(a in _SCALARS or a is Any or typing.get_origin(a) is typing.Literal for a in arms):
            return None
    return item_types


def _parse_comma_list(raw: str, tp: Any, key: str) -> Any:
    """``A,D`` (no brackets) for a tuple/list of scalars: each piece parsed as its element type.
    None when ``raw`` is not such a list (brackets, or elements that are not scalars)."""
    seq_tp = _sequence_type(tp)
    if seq_tp is None or (raw and raw[0] in "([{") or raw.lower() in ("none", "null"):
        return None
    pieces = [p.strip() for p in raw.split(",")]
    if pieces and pieces[-1] == "" and len(pieces) > 1:   # a trailing comma: "A," is ("A",)
        pieces.pop()
    if pieces == [""]:
        pieces = []
    item_types = _item_types(seq_tp, len(pieces))
    if item_types is None:
        return None
    items = [parse_text(p, t, f"{key}[{i}]") for i, (p, t) in enumerate(zip(pieces, item_types))]
    return coerce(items, tp, key)


def parse_text(text: str, tp: Any, key: str) -> Any:
    """Parse command-line text for a field of type ``tp``.

    Numbers, booleans (``true``/``false``/``1``/``0``), ``none``, and Python-style tuples or
    lists are understood; strings need no quotes; a tuple or list of scalars may be a bare
    comma list (``A,D``, ``0.1,0.5``; an empty text is an empty tuple).
    """
    raw = text.strip()
    low = raw.lower()
    listed = _parse_comma_list(raw, tp, key)
    if listed is not None:
        return listed
    if low in ("none", "null"):
        value: Any = None
    elif low in ("true", "yes", "on"):
        value = True
    elif low in ("false", "no", "off"):
        value = False
    else:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
    if tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType)
                     and str in typing.get_args(tp) and not isinstance(value, type(None))):
        if not isinstance(value, str):
            value = raw
    if tp is bool and isinstance(value, int) and value in (0, 1):
        value = bool(value)
    if typing.get_origin(tp) in (tuple, list) and isinstance(value, _SCALARS) and value is not None:
        value = (value,)
    return coerce(value, tp, key)


def from_dict(cls: type[C], data: Mapping[str, Any], prefix: str = "") -> C:
    """Build a config of class ``cls`` from a nested mapping, checking keys and types."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(_unknown_message(prefix + unknown[0], [prefix + k for k in types_]))
    kwargs = {name: coerce(value, types_[name], prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def _unknown_message(key: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown config key {key!r}{hint}; valid keys: {', '.join(valid)}"


def _replace_path(cfg: Any, path: list[str], value: Any) -> Any:
    head, rest = path[0], path[1:]
    current = getattr(cfg, head)
    new = _replace_path(current, rest, value) if rest else value
    return dataclasses.replace(cfg, **{head: new})


def set_value(cfg: C, key: str, value: Any, *, from_text: bool = False) -> C:
    """A copy of ``cfg`` with the dotted ``key`` set to ``value`` (parsed if ``from_text``)."""
    fields = flat_fields(cfg)
    if key not in fields:
        raise ConfigError(_unknown_message(key, fields))
    tp = fields[key]
    value = parse_text(value, tp, key) if from_text else coerce(value, tp, key)
    field, current = _field_of(cfg, key)
    check_choices(field, key, value)
    _check_not_emptied(field, current, key, value)
    return _replace_path(cfg, key.split("."), value)


def choices_from(module: str, name: str) -> dict[str, Any]:
    """Field metadata ``{"choices": ...}`` naming the allowed values by where they live
    (``module.name``, a collection or a mapping whose keys are the values), imported only when a
    value is checked."""
    def lookup() -> tuple[Any, ...]:
        return tuple(getattr(importlib.import_module(module), name))

    lookup.__qualname__ = f"choices_from({module}.{name})"
    return {"choices": lookup}


def field_choices(field: dataclasses.Field) -> tuple[Any, ...] | None:
    """The values a config field allows (its ``choices`` metadata), or None when any value goes."""
    choices = field.metadata.get("choices")
    if choices is None:
        return None
    if callable(choices):
        choices = choices()
    return tuple(choices)


def check_choices(field: dataclasses.Field, key: str, value: Any) -> None:
    """ConfigError naming ``key`` when ``value`` (or an element of it) is not among the field's
    ``choices``; None is left to the type check."""
    choices = field_choices(field)
    if choices is None or value is None:
        return
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    bad = [v for v in items if v not in choices]
    if bad:
        raise ConfigError(f"{key}: {', '.join(repr(b) for b in bad)} not allowed; "
                          f"choose from {', '.join(map(str, choices))}")


def _field_of(cfg: Any, key: str) -> tuple[dataclasses.Field, Any]:
    *parents, last = key.split(".")
    for name in parents:
        cfg = getattr(cfg, name)
    field = next(f for f in dataclasses.fields(cfg) if f.name == last)
    return field, getattr(cfg, last)


def _check_not_emptied(field: dataclasses.Field, current: Any, key: str, value: Any) -> None:
    """A list the experiment loops over (a non-empty default) may not be overridden to empty:
    the run would compute nothing. Fields whose metadata has ``allow_empty`` are exempt."""
    if not isinstance(value, (tuple, list)) or value:
        return
    if field.metadata.get("allow_empty") or not isinstance(current, (tuple, list)) or not current:
        return
    raise ConfigError(f"{key}: expected at least one value (default {tuple(current)!r}); an empty list "
                      f"leaves the experiment nothing to run")


def apply_overrides(cfg: C, overrides: Mapping[str, Any] | Iterable[str] | None) -> C:
    """Apply ``{"a.b": value}`` or ``["a.b=text", ...]`` to a config, returning a new one."""
    if not overrides:
        return cfg
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            cfg = set_value(cfg, key, value)
        return cfg
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.epochs=5")
        key, text = item.split("=", 1)
        cfg = set_value(cfg, key.strip(), text, from_text=True)
    return cfg
