"""BagConfig follows the preset convention: frozen, validated without rewriting a field, presets."""

from __future__ import annotations

import dataclasses

import pytest

from wrmil_core.bags.config import PRESETS, BagConfig, preset
from wrmil_core.errors import WrmilInputError


def test_presets_are_named_and_overridable():
    assert set(PRESETS) == {"demo", "cpu", "gpu", "paper"}
    # the run presets cpu / gpu (issue 11) only change the embedding; bags stay as in demo
    assert PRESETS["cpu"] == PRESETS["gpu"] == PRESETS["demo"]
    assert preset("demo") == PRESETS["demo"] and preset("demo").bag_stride == 5
    paper = preset("paper", seed=3, ratios=(0.1, 0.3))
    assert (paper.mode, paper.seed, paper.ratios) == ("instance", 3, (0.1, 0.3))
    assert PRESETS["paper"].seed == 0                                           # the preset itself is untouched
    with pytest.raises(WrmilInputError, match=r"unknown BagConfig preset 'huge'.*\['cpu', 'demo', 'gpu', 'paper'\]"):
        preset("huge")
    with pytest.raises(WrmilInputError, match=r"no field\(s\) \['windows'\]"):
        preset("demo", windows=3)
    with pytest.raises(WrmilInputError, match="same bag"):                   # overrides are validated again
        preset("demo", window_stride=1)


@pytest.mark.parametrize("fields", [
    {},
    {"mode": "instance"},
    {"ratios": (0.15, 0.25), "window_stride": 3, "bag_stride": 2, "n_genuine": 7, "seed": 5},
])
def test_fields_are_kept_as_given_and_derived_values_are_properties(fields):
    cfg = BagConfig(**fields)
    assert {k: getattr(cfg, k) for k in fields} == fields
    assert cfg.window_stride == fields.get("window_stride") and cfg.bag_stride == fields.get("bag_stride")
    assert cfg.effective_window_stride == fields.get("window_stride", 5 if cfg.mode == "word" else 1)
    assert cfg.effective_bag_stride == fields.get("bag_stride", cfg.bag_size)
    assert cfg.words_per_bag == (cfg.bag_size - 1) * cfg.effective_window_stride + cfg.window_size
    assert list(cfg.foreign_counts) == list(cfg.ratios)
    assert [f.name for f in dataclasses.fields(cfg)] == [
        "bag_size", "window_size", "mode", "ratios", "window_stride", "bag_stride", "n_genuine", "seed", "geometries"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
    assert hash(cfg) == hash(BagConfig(**fields))


def test_geometries_default_and_presets():
    assert BagConfig().geometries == ("contiguous",)                       # a plain config builds what it did
    assert PRESETS["demo"].geometries == ("contiguous", "scattered", "two_donors")   # the demo reports all three
    assert PRESETS["paper"].geometries == ("contiguous",)                   # instance mode has no scattered words
    assert BagConfig(geometries=("scattered", "contiguous")).ordered_geometries == ("contiguous", "scattered")


def test_foreign_counts_per_mode():
    assert BagConfig().foreign_counts == {0.05: 3, 0.1: 5, 0.2: 10, 0.3: 15}
    paper = BagConfig(mode="instance")
    assert paper.foreign_counts == {0.05: 1, 0.1: 1, 0.2: 2, 0.3: 3}
    assert paper.colliding_ratios == [[0.05, 0.1]] and BagConfig().colliding_ratios == []


@pytest.mark.parametrize("fields, match", [
    ({"ratios": [0.1, 0.2]}, "must be a tuple"),
    ({"ratios": ()}, "empty"),
    ({"ratios": (0.1, 1.0)}, "strictly between 0 and 1"),
    ({"ratios": (0.1, "0.2")}, "strictly between 0 and 1"),
    ({"ratios": (0.1, 0.1)}, "repeated"),
    ({"mode": "words"}, "mode must be one of"),
    ({"bag_size": 0}, "bag_size must be >= 1"),
    ({"window_stride": 6}, "window_stride must be between 1 and window_size=5"),
    ({"bag_stride": 0}, "bag_stride must be >= 1"),
    ({"n_genuine": 0}, "n_genuine must be >= 1"),
    ({"mode": "instance", "bag_size": 1}, "bag_size >= 2"),
    ({"geometries": ()}, "non-empty tuple"),
    ({"geometries": ["contiguous"]}, "non-empty tuple"),
    ({"geometries": ("contiguous", "spread")}, "non-empty tuple of distinct names"),
    ({"geometries": ("scattered", "scattered")}, "distinct"),
    ({"mode": "instance", "geometries": ("scattered",)}, "needs mode='word'"),
    ({"bag_size": 4, "ratios": (0.3, 0.6), "geometries": ("scattered",)}, "non-adjacent"),
    ({"mode": "instance", "geometries": ("contiguous", "two_donors")}, "'two_donors' needs mode='word'"),
    ({"bag_size": 4, "ratios": (0.05, 0.2), "geometries": ("two_donors",)}, "needs at least 2 foreign words"),
])
def test_invalid_configs_are_refused(fields, match):
    with pytest.raises(WrmilInputError, match=match):
        BagConfig(**fields)
