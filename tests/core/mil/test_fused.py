"""The fused default detector: fitted on validation bags only, near the best single statistic in
every geometry, counts writers, and round-trips through its saved state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.metrics import roc_auc
from wrmil_core.mil.fused import FEATURES, FusedMIL, balanced_threshold

WORDS, WINDOW, DIM = 50, 5, 16


def _foreign(geometry: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Word positions of each donor: one run, ten scattered words, or two runs of five."""
    if geometry == "contiguous":
        start = rng.integers(0, WORDS - 10)
        return [np.arange(start, start + 10)]
    if geometry == "scattered":
        return [np.sort(rng.choice(WORDS, 10, replace=False))]
    a = rng.integers(0, 20)
    b = rng.integers(a + 6, WORDS - 5)
    return [np.arange(a, a + 5), np.arange(b, b + 5)]


def make_bags(seed: int, per_geometry: int = 40, separation: float = 0.7) -> BagTensors:
    """Genuine bags and 20 % contaminated bags of every geometry, from writers drawn for ``seed``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(60, DIM)) * separation

    def words(w: int, n: int) -> np.ndarray:
        return centres[w] + rng.normal(size=(n, DIM)) / np.sqrt(DIM) * 2

    xs, labels, geometries, writers = [], [], [], []
    for geometry in ("none",) * (2 * per_geometry) + tuple(
            g for g in ("contiguous", "scattered", "two_donors") for _ in range(per_geometry)):
        base, *donors = rng.choice(60, 3, replace=False)
        x = words(base, WORDS)
        runs = [] if geometry == "none" else _foreign(geometry, rng)
        for donor, where in zip(donors, runs):
            x[where] = words(donor, len(where))
        xs.append(x)
        labels.append(int(geometry != "none"))
        geometries.append(geometry)
        writers.append(1 + len(runs))
    b = len(xs)
    return BagTensors(x=torch.as_tensor(np.stack(xs), dtype=torch.float32).reshape(b, WORDS // WINDOW, WINDOW, DIM),
                      label=torch.as_tensor(labels), window_foreign=torch.zeros(b, WORDS // WINDOW, dtype=torch.bool),
                      ratio=np.where(np.array(labels) == 1, 0.2, 0.0), foreign_word_frac=np.zeros(b),
                      bag_id=np.arange(b), model_id="toy", geometry=np.array(geometries),
                      n_writers=np.array(writers))


@pytest.fixture(scope="module")
def fitted() -> tuple[FusedMIL, BagTensors]:
    model = FusedMIL(DIM)
    model.fit(make_bags(1), make_bags(2))
    return model, make_bags(3)


def test_fit_reads_validation_bags_only() -> None:
    val = make_bags(2)
    a, b, c = FusedMIL(DIM), FusedMIL(DIM), FusedMIL(DIM)
    a.fit(make_bags(1), val)
    poisoned = make_bags(5)
    poisoned.x[:] = float("nan")  # training bags the fit must never read
    b.fit(poisoned, val)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], equal_nan=True)
    c.fit(make_bags(1), make_bags(4))  # other validation bags: another fusion
    assert not torch.equal(a.coef, c.coef)
    assert torch.isfinite(a.log_weight).sum() == 3  # one fusion per contaminated geometry


def test_every_geometry_near_the_best_statistic(fitted: tuple[FusedMIL, BagTensors]) -> None:
    model, test = fitted
    with torch.no_grad():
        fused = model(test.x)[0].numpy()
        feats = model.features(test.x).values.numpy()
    y, geometry = test.label.numpy(), test.geometry
    for g in ("contiguous", "scattered", "two_donors"):
        keep = (y == 0) | (geometry == g)
        best = max(roc_auc(y[keep], f) for f in feats[keep].T)
        assert roc_auc(y[keep], fused[keep]) >= best - 0.03, g
        assert roc_auc(y[keep], fused[keep]) > 0.8, g


def test_writer_count_and_main_posterior(fitted: tuple[FusedMIL, BagTensors]) -> None:
    model, test = fitted
    count, posterior = model.writers(test.x)
    truth = test.n_writers
    assert (count[truth == 1] == 1).mean() > 0.7
    assert (count[truth > 1] > 1).mean() > 0.7
    assert posterior.shape == (len(test), WORDS)
    assert np.all((posterior >= 0) & (posterior <= 1))
    assert np.all(posterior[count == 1] == 1)  # one writer: every word is the main writer's


def test_state_round_trips(fitted: tuple[FusedMIL, BagTensors]) -> None:
    model, test = fitted
    again = FusedMIL(DIM)
    again.load_state_dict({k: v.clone() for k, v in model.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(again(test.x)[0], model(test.x)[0])
    assert len(FEATURES) == model.coef.shape[1]


def test_balanced_threshold_separates() -> None:
    score = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert 0.3 < balanced_threshold(score, score > 0.5) < 0.8


def test_fit_returns_cross_fitted_val_logits_by_writer() -> None:
    """With the val bags' writers known, every val bag's returned logit comes from a fit that never
    saw its writer: not the in-sample logit, and no better at separating the val bags."""
    val = make_bags(2)
    val.base_writer = np.arange(len(val)) // 4  # four bags per writer
    model = FusedMIL(DIM)
    info = model.fit(make_bags(1), val)
    assert info["fitted_on"].endswith("writers") and info["folds"] == 5
    cross = info["val_logits"]
    with torch.no_grad():
        in_sample = model(val.x)[0].numpy()
    assert cross.shape == (len(val),) and not np.allclose(cross, in_sample)
    y = val.label.numpy()
    assert roc_auc(y, cross) <= roc_auc(y, in_sample) + 1e-9


def test_writers_of_a_whole_document(fitted: tuple[FusedMIL, BagTensors]) -> None:
    """wrmil score's shape: one document as one bag of one-word windows."""
    model, test = fitted
    doc = test.x[-1].reshape(1, -1, 1, DIM)  # a two_donors bag
    count, posterior = model.writers(doc)
    assert count.shape == (1,) and posterior.shape == (1, WORDS) and count[0] in (1, 2, 3)
