"""MIL models: shapes, permutation behaviour, the distance baseline, the toy generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wrmil_core.detectors.base import WINDOW_OUTPUTS, MILModel
from wrmil_core.mil.models import contrast_features
from wrmil_core.mil.registry import MODEL_NAMES, MODEL_REGISTRY, build_mil_model
from wrmil_core.mil.toy import make_toy_bags

B, W, T, D = 4, 10, 5, 16


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return make_toy_bags(2, ratios=(0.2,), n_contaminated_per_ratio=2, dim=D, seed=3).x


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shapes_and_finite(name: str, x: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = build_mil_model(name, D).eval()
    logit, ws = model(x)
    assert logit.shape == (B,) and ws.shape == (B, W)
    assert torch.isfinite(logit).all() and torch.isfinite(ws).all()


ORDER_INVARIANT = [n for n in MODEL_NAMES if MODEL_REGISTRY[n].window_order_invariant]


def test_only_the_passage_models_depend_on_window_order() -> None:
    """The segment scan and the two-covariance run statistic (alone and inside the fused default)
    read the words in reading order; every other model pools over a set."""
    assert set(MODEL_NAMES) - set(ORDER_INVARIANT) == {"segment_scan", "two_covariance", "fused"}


@pytest.mark.parametrize("name", ORDER_INVARIANT)
def test_window_order_does_not_change_bag_score(name: str, x: torch.Tensor) -> None:
    """Every model but the segment scan pools over an unordered set: permuting windows leaves
    the bag logit unchanged and permutes the window scores the same way."""
    torch.manual_seed(0)
    model = build_mil_model(name, D).eval()
    perm = torch.randperm(W, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logit, ws = model(x)
        logit_p, ws_p = model(x[:, perm])
    assert not torch.equal(x, x[:, perm])
    torch.testing.assert_close(logit_p, logit, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ws_p, ws[:, perm], atol=1e-5, rtol=1e-5)


def test_attention_models_give_weights_summing_to_one(x: torch.Tensor) -> None:
    for name in ("abmil", "gated_abmil"):
        _, a = build_mil_model(name, D)(x)
        torch.testing.assert_close(a.sum(1), torch.ones(B))
        assert (a >= 0).all()


def test_set_models_see_the_other_windows(x: torch.Tensor) -> None:
    """Unlike attention pooling, a window's score in the set models depends on the rest of its bag."""
    for name in ("contrast", "set_transformer", "distance"):
        torch.manual_seed(0)
        model = build_mil_model(name, D).eval()
        x2 = x.clone()
        x2[:, 1:] = x[[1, 2, 3, 0], 1:]  # keep window 0, change its bag-mates
        with torch.no_grad():
            assert not torch.allclose(model(x)[1][:, 0], model(x2)[1][:, 0], atol=1e-4), name


def test_distance_baseline_points_at_the_odd_window() -> None:
    base = torch.nn.functional.normalize(torch.tensor([1.0, 0.2, 0.0, 0.0]), dim=0)
    odd = torch.tensor([0.0, 0.0, 1.0, 0.0])
    x = base.repeat(2, 6, 3, 1)
    x[1, 4] = odd
    model = build_mil_model("distance", 4)
    assert model.trainable is False and not list(model.parameters())
    logit, ws = model(x)
    assert torch.allclose(ws[0], torch.zeros(6), atol=1e-6)  # identical windows: no distance
    assert int(ws[1].argmax()) == 4 and ws[1, 4] == pytest.approx(1.0, abs=1e-5)
    assert logit[1] == ws[1].max() and logit[1] > logit[0]


def test_contrast_features_flag_foreign_windows() -> None:
    bags = make_toy_bags(0, ratios=(0.2,), n_contaminated_per_ratio=50, separation=2.0, seed=4)
    f = contrast_features(bags.x)
    assert f.shape == (50, 10, 9) and torch.isfinite(f).all()
    wf = bags.window_foreign
    assert f[..., 0][wf].mean() > f[..., 0][~wf].mean() + 0.1  # leave-one-out distance


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="unknown MIL model"):
        build_mil_model("nope", 8)


def test_toy_generator_contract() -> None:
    b = make_toy_bags(30, ratios=(0.05, 0.1, 0.2, 0.3), seed=0, dim=8)
    assert b.x.shape == (90, 10, 5, 8) and b.x.dtype == torch.float32
    torch.testing.assert_close(b.x.norm(dim=-1), torch.ones(90, 10, 5))
    y = b.label.numpy()
    assert (y == 0).sum() == 30 and (y == 1).sum() == 60  # the 1:2 balance
    for r in (0.05, 0.1, 0.2, 0.3):
        sel = b.ratio == r
        assert sel.sum() == 15
        # word level: exactly round(r * 50) foreign words, and 5% != 10%
        np.testing.assert_allclose(b.foreign_word_frac[sel], max(1, round(r * 50)) / 50)
    assert not b.window_foreign[y == 0].any() and b.window_foreign[y == 1].any(1).all()
    inst = make_toy_bags(4, ratios=(0.05, 0.3), mode="instance", seed=0, dim=8)
    k = inst.window_foreign.sum(1).numpy()
    np.testing.assert_array_equal(k, [0] * 4 + [1] * 4 + [3] * 4)  # the original's max(1, int(10 r))
    again = make_toy_bags(30, seed=0, dim=8)
    assert torch.equal(again.x, b.x)


def test_every_model_declares_its_window_output() -> None:
    """Document scoring reads window_output from the model: logits for the max-pooled models,
    attention weights for the attention-pooled ones."""
    declared = {name: MODEL_REGISTRY[name].window_output for name in MODEL_NAMES}
    assert set(declared.values()) <= set(WINDOW_OUTPUTS)
    assert declared == {"abmil": "attention", "gated_abmil": "attention", "contrast": "logit",
                        "set_transformer": "logit", "distance": "logit", "segment_scan": "logit",
                        "scattered": "logit", "two_covariance": "logit", "fused": "logit"}
    assert build_mil_model("gated_abmil", D).window_output == "attention"


def test_model_class_without_window_output_is_refused() -> None:
    with pytest.raises(TypeError, match="Undeclared must declare window_output"):
        class Undeclared(MILModel):
            name = "undeclared"
    with pytest.raises(TypeError, match="got 'probability'"):
        class Misdeclared(MILModel):
            name = "misdeclared"
            window_output = "probability"


def _planted_passage_bags() -> torch.Tensor:
    """Two bags of one writer with words 12..21 (windows 2-4) by another, in reading order."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(2, D))
    centres *= 1.5 / np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[0] + rng.normal(size=(2, W * T, D)) / np.sqrt(D)
    x[:, 12:22] = centres[1] + rng.normal(size=(2, 10, D)) / np.sqrt(D)
    return torch.from_numpy(x.reshape(2, W, T, D).astype(np.float32))


def test_segment_scan_sees_the_order_of_the_windows() -> None:
    """The passage is contiguous in reading order; scattering its windows weakens the scan."""
    x = _planted_passage_bags()
    model = build_mil_model("segment_scan", D)
    perm = torch.tensor([0, 3, 6, 1, 8, 2, 9, 4, 5, 7])   # windows 2, 3, 4 no longer adjacent
    assert (model(x)[0] > model(x[:, perm])[0] + 1).all()


@pytest.mark.parametrize("name,api", [("segment_scan", "segment_scan"), ("scattered", "scattered")])
def test_word_level_wrappers_agree_with_the_word_level_api(name: str, api: str) -> None:
    """Bag logit = the detector's statistic on the bag's flattened words; window score = max
    word evidence of the window; the foreign windows score highest."""
    import wrmil_core.detectors as det

    x = _planted_passage_bags()
    logit, ws = build_mil_model(name, D)(x)
    for b in range(2):
        r = getattr(det, api)(x[b].reshape(W * T, D).numpy())
        assert float(logit[b]) == pytest.approx(r.statistic, rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(ws[b].numpy(), r.word_evidence.reshape(W, T).max(1), rtol=1e-5, atol=1e-5)
        assert set(torch.topk(ws[b], 2).indices.tolist()) <= {2, 3, 4}
    if name == "segment_scan":
        assert [det.segment_scan(x[b].reshape(W * T, D).numpy()).passage for b in range(2)] == [(12, 21)] * 2


def test_training_free_detectors_need_no_training() -> None:
    for name in ("distance", "segment_scan", "scattered"):
        model = build_mil_model(name, D)
        assert not model.trainable and model.window_output == "logit" and not list(model.parameters())
