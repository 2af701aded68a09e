"""One preset convention for every stage: a frozen, validated dataclass, a ``PRESETS`` dict, and
:func:`preset` to pick one by name with field overrides (one config per experiment, as in
insightface's arcface_torch).

A stage config validates itself in ``__post_init__`` (raising :class:`WrmilInputError`) and never
rewrites its own fields; derived values are properties.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from wrmil_core.errors import WrmilInputError

C = TypeVar("C")


def preset(presets: Mapping[str, C], name: str, **overrides: Any) -> C:
    """``presets[name]`` with ``overrides`` applied (and validated again by the dataclass).

    Unknown preset names and unknown fields are refused with the valid choices.
    """
    if name not in presets:
        kind = type(next(iter(presets.values()))).__name__ if presets else "stage"
        raise WrmilInputError(f"unknown {kind} preset {name!r}; choose one of {sorted(presets)}")
    base = presets[name]
    fields = {f.name for f in dataclasses.fields(base) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise WrmilInputError(f"{type(base).__name__} has no field(s) {unknown}; valid fields: {sorted(fields)}")
    return dataclasses.replace(base, **overrides)  # type: ignore[type-var]
