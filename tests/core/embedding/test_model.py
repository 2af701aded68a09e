"""Embedding network: shapes, normalisation, grayscale stems, local weights files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import timm
import timm.data
import torch
from safetensors.torch import save_file

from wrmil_core.embedding.config import PRESETS, EmbeddingConfig, preset
from wrmil_core.embedding.model import build_model
from wrmil_core.errors import WrmilInputError

CFG = EmbeddingConfig(backbone="test_resnet", img_h=32, img_w=96, emb_dim=16, hidden_dim=32)


def test_output_shapes_and_unit_norm() -> None:
    model = build_model(CFG).eval()
    x = torch.randint(0, 256, (4, 1, 32, 96), dtype=torch.uint8)
    assert model(x).shape == (4, 16)
    e = model.embed(x)
    assert e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4))
    # The original head: Linear, BN, ReLU, Dropout, Linear, BN.
    kinds = [type(m).__name__ for m in model.head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "BatchNorm1d"]


def test_rgb_mode_repeats_gray_and_uses_per_channel_stats() -> None:
    model = build_model(replace(CFG, in_chans=3)).eval()
    assert model.mean.shape == (1, 3, 1, 1)
    x = torch.randint(0, 256, (2, 1, 32, 96), dtype=torch.uint8)
    assert model(x).shape == (2, 16)
    gray = build_model(CFG)
    assert gray.mean.shape == (1, 1, 1, 1)
    rgb = timm.data.resolve_data_config({}, model=timm.create_model("test_resnet", pretrained=False))
    assert model.mean.flatten().tolist() == pytest.approx(list(rgb["mean"]))
    assert gray.mean.item() == pytest.approx(sum(rgb["mean"]) / 3)  # summed RGB stem -> channel average
    assert gray.std.item() == pytest.approx(sum(rgb["std"]) / 3)


def _backbone_file(tmp_path: Path, name: str) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    sd = timm.create_model(name, pretrained=False).state_dict()  # RGB, with classifier, like a real checkpoint
    path = tmp_path / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path, sd


def test_local_weights_file_is_loaded_and_rgb_stem_adapted(tmp_path: Path) -> None:
    path, sd = _backbone_file(tmp_path, "test_resnet")
    model = build_model(replace(CFG, weights_file=str(path)))
    got = model.backbone.state_dict()
    stem = next(k for k in got if k.endswith("weight") and got[k].ndim == 4)
    # timm sums the RGB stem over its channels for a grayscale model.
    torch.testing.assert_close(got[stem], sd[stem].sum(dim=1, keepdim=True))
    later = [k for k in got if k.endswith("weight") and k != stem and got[k].ndim == 4][-1]
    torch.testing.assert_close(got[later], sd[later])
    # load_weights=False (inference from a saved model) ignores the file.
    assert not torch.equal(build_model(replace(CFG, weights_file=str(path)), load_weights=False).backbone.state_dict()[later], sd[later])


def test_mismatched_weights_file_names_file_and_backbone(tmp_path: Path) -> None:
    path, _ = _backbone_file(tmp_path, "test_efficientnet")
    with pytest.raises(WrmilInputError) as e:
        build_model(replace(CFG, weights_file=str(path)))
    assert str(path) in str(e.value) and "test_resnet" in str(e.value)


def test_missing_file_and_unknown_backbone(tmp_path: Path) -> None:
    with pytest.raises(WrmilInputError, match="does not exist"):
        build_model(replace(CFG, weights_file=str(tmp_path / "nope.safetensors")))
    with pytest.raises(WrmilInputError, match="unknown timm backbone"):
        build_model(replace(CFG, backbone="no_such_net_42"))


def test_presets_and_config_validation() -> None:
    paper = PRESETS["paper"]
    assert (paper.backbone, paper.img_h, paper.img_w, paper.resize_mode) == ("vit_base_patch16_224", 224, 224, "squash")
    assert (paper.s, paper.m, paper.lr, paper.max_lr, paper.weight_decay, paper.batch_size, paper.epochs) == (
        30.0, 0.5, 1e-5, 1e-4, 5e-4, 64, 30)
    assert preset("demo", epochs=2).epochs == 2
    assert EmbeddingConfig.from_dict({**CFG.to_dict(), "model_id": "x"}) == CFG
    with pytest.raises(WrmilInputError, match="head"):
        replace(CFG, head="softmax")
    with pytest.raises(WrmilInputError, match="no field"):
        preset("demo", bogus=1)
    with pytest.raises(WrmilInputError, match="unknown EmbeddingConfig preset"):
        preset("huge")
