"""Pydantic validation errors as located diagnostics: the file, line and column of the
bad key or value, what is wrong, and a hint (close key names, the schema of the kind)."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from campaignctl.errors import Diagnostic, InvalidValue, Severity
from campaignctl.spec.loader import PathKey, SourceMap
from campaignctl.spec.models import (
    KINDS,
    Condition,
    Operators,
)


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types a (possibly Annotated / Optional / Union) annotation may hold."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _step_into(tp: Any, part: str | int) -> Any:
    for option in _unwrap(tp):
        origin = typing.get_origin(option)
        if origin is list and isinstance(part, int):
            return typing.get_args(option)[0]
        if origin is dict and not isinstance(part, int):
            return typing.get_args(option)[1]
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(part, str):
            for name, info in option.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
            if option is Condition:  # any other key of a condition is an attribute test
                return Operators
    return None


def model_at(model_cls: type[BaseModel], path: PathKey) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `path`, if it is one."""
    current: Any = model_cls
    for part in path:
        current = _step_into(current, part)
        if current is None:
            return None
    for option in _unwrap(current):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def allowed_keys(model_cls: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model_cls.model_fields.items()]


def _dotted(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def diagnostics_from_validation(
    exc: ValidationError, file: str, smap: SourceMap, model_cls: type[BaseModel]
) -> list[Diagnostic]:
    """Map each pydantic error back to the line and column of the YAML that caused it."""
    out: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            key = loc[-1]
            parent = smap.known_prefix(loc[:-1])
            mark = smap.locate((*parent, key), key=True)
            where = f" in {_dotted(parent)}" if parent else ""
            code, message = "unknown-key", f"unknown key {key!r}{where}"
            parent_model = model_at(model_cls, parent)
            candidates = allowed_keys(parent_model) if parent_model else []
            close = difflib.get_close_matches(str(key), candidates, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}?"
            elif candidates:
                hint = f"allowed keys here: {', '.join(candidates)}"
            else:
                hint = "remove it"
            if str(key) in ("password", "token", "secret", "api_key", "private_key"):
                hint = (
                    "secrets never go in YAML: put the secret in an environment variable "
                    f"and name it with `{key}_env:`"
                )
        elif kind == "missing":
            parent = smap.known_prefix(loc[:-1])
            mark = smap.locate(parent)
            where = f" in {_dotted(parent)}" if parent else ""
            code, message = "missing-field", f"missing required key {loc[-1]!r}{where}"
            hint = f"add `{loc[-1]}:`"
        else:
            path = smap.known_prefix(loc)
            mark = smap.locate(path)
            text = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            got = err.get("input")
            suffix = ""
            if (
                kind not in ("value_error",)
                and isinstance(got, (str, int, float, bool))
                and got is not None
            ):
                suffix = f" (got {_short(got)})"
            code = "invalid-value"
            message = f"{_dotted(path)}: {text}{suffix}" if path else f"{text}{suffix}"
            hint = _hint_for(err) or _schema_hint(model_cls)
        signature = (mark.line, mark.column, code)
        if signature in seen:  # unions report one error per member: keep the first
            continue
        seen.add(signature)
        out.append(Diagnostic(file, mark.line, mark.column, Severity.ERROR, code, message, hint))
    return out


def _schema_hint(model_cls: type[BaseModel]) -> str:
    """The hint of a value error that has no better one: where the allowed values are."""
    name = next((k.lower() for k, cls in KINDS.items() if cls is model_cls), "config")
    return f"`campaignctl schema {name}` describes every key and the values it takes"


def _hint_for(err: Any) -> str | None:
    kind = err["type"]
    if isinstance(err.get("ctx", {}).get("error"), InvalidValue):
        return err["ctx"]["error"].hint
    if kind == "enum":
        expected = err.get("ctx", {}).get("expected")
        return f"use one of {expected}" if expected else None
    if kind.startswith(("datetime", "date")):
        return "write dates as 2027-03-01 and times as 2027-03-01T09:00"
    if kind.endswith("_type"):
        return "check the value's type (quote text, unquote numbers and booleans)"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        if pattern.startswith("^[A-Z_]"):
            return "give the NAME of an environment variable (e.g. SMTP_PASSWORD), not its value"
        return f"the value must match {pattern}"
    return None
