"""Form descriptions of config fields, read from the pydantic schema so the wizard's inputs,
limits, choices and help texts are the schema's own (one source for UI and validation)."""
from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel

from core.config import OPTIMIZERS, SCHEDULERS, VARIANTS, RunConfig

CHOICES = {"training.scheduler": SCHEDULERS, "training.optimizer": OPTIMIZERS,
           "algorithm.variant": VARIANTS}


@lru_cache(maxsize=None)
def field_info(path: str) -> dict[str, Any]:
    """kind (text/number/integer/select/checkbox/list/textarea), help, choices, min, max,
    nullable and default of the config field at dotted `path`."""
    model: type[BaseModel] = RunConfig
    *sections, name = path.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    field = model.model_fields[name]
    annotation, nullable = _unwrap_optional(field.annotation)
    info: dict[str, Any] = {"path": path, "help": field.description or "", "nullable": nullable,
                            "default": None if field.default_factory else field.default}
    for meta in field.metadata:
        if isinstance(meta, (Ge, Gt)):
            info["min"] = getattr(meta, "ge", getattr(meta, "gt", None))
        if isinstance(meta, (Le, Lt)):
            info["max"] = getattr(meta, "le", getattr(meta, "lt", None))
    info["kind"], info["choices"] = _kind(path, annotation)
    return info


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return rest[0], len(rest) < len(args)
    return annotation, False


def _kind(path: str, annotation: Any) -> tuple[str, tuple[str, ...] | None]:
    if path in CHOICES:
        return "select", CHOICES[path]
    if typing.get_origin(annotation) is Literal:
        return "select", typing.get_args(annotation)
    if annotation is bool:
        return "checkbox", None
    if annotation is int:
        return "integer", None
    if annotation is float:
        return "number", None
    if typing.get_origin(annotation) is list:
        return "list", None
    return "text", None
