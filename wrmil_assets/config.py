"""Dagster ``Config`` classes generated from the core's hyper-parameter dataclasses.

Each core stage keeps its hyper-parameters in one dataclass with named presets (one config per
experiment, as in insightface's arcface_torch). Here each dataclass becomes a launchpad form:
a ``preset`` name plus every field as an optional override (empty = the preset's value).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

import dagster as dg
import pydantic

from wrmil_core.errors import WrmilInputError


# The presets `wrmil run --preset` offers, one name for all stages: every stage's PRESETS holds each
# (where a stage has nothing to change, e.g. ingest, its entries are equal). docs/configuration.md,
# "Presets and configuration".
RUN_PRESETS: dict[str, str] = {
    "demo": "the synthetic demo set on a CPU (its default)",
    "cpu": "your own handwriting on a CPU (its default): writer-balanced P x K batches, capture-shortcut "
           "augmentation, training scaled to the data set",
    "gpu": "the cpu recipe sized for one GPU (ResNet-34-D at 96x384)",
    "paper": "the research pipeline (ViT-B/16 at 224x224, the original instance-replacement bags)",
}


def _launchpad_type(tp: Any) -> Any:
    """Dagster config understands plain scalars and lists; tuples become lists."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return list[args[0]] if args else list
    if origin is typing.Literal:
        return type(typing.get_args(tp)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _launchpad_type(args[0]) if len(args) == 1 else str
    return tp


def preset_config_class(name: str, dc: type, presets: dict[str, Any], default_preset: str,
                        exclude: tuple[str, ...] = ()) -> type[dg.Config]:
    """A ``dg.Config`` subclass with ``preset`` + optional overrides for every field of ``dc``
    (``exclude``: fields that stay at the preset value, e.g. nested dicts the launchpad cannot type)."""
    hints = typing.get_type_hints(dc)
    fields: dict[str, Any] = {
        "preset": (str, pydantic.Field(default=default_preset, description=f"one of {sorted(presets)}")),
    }
    for f in dataclasses.fields(dc):
        if not f.init or f.name in exclude:
            continue
        fields[f.name] = (Optional[_launchpad_type(hints[f.name])], pydantic.Field(default=None))
    cls = pydantic.create_model(name, __base__=dg.Config, **fields)
    cls.__doc__ = f"Hyper-parameters of {dc.__name__}: a preset plus per-field overrides."
    return cls


def resolve(config: dg.Config, dc: type, presets: dict[str, Any], device: str | None = None) -> Any:
    """The preset named in ``config`` with every non-empty override applied.

    ``device`` (the settings resource's) replaces a config left at ``"auto"``.
    """
    if config.preset not in presets:
        raise WrmilInputError(f"unknown {dc.__name__} preset {config.preset!r}; choose one of {sorted(presets)} "
                              "(`wrmil run --preset`, or `preset` in the launchpad / --config)")
    base = presets[config.preset]
    hints = typing.get_type_hints(dc)
    overrides = {}
    for f in dataclasses.fields(dc):
        if not f.init or not hasattr(config, f.name):
            continue
        value = getattr(config, f.name)
        if value is None:
            continue
        if typing.get_origin(hints[f.name]) is tuple and isinstance(value, list):
            value = tuple(value)
        overrides[f.name] = value
    resolved = dataclasses.replace(base, **overrides)
    if device and device != "auto" and getattr(resolved, "device", None) == "auto":
        resolved = dataclasses.replace(resolved, device=device)
    return resolved
