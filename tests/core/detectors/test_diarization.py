"""VB diarization: exact for one writer, and on a planted three-writer sequence it finds three
writers and gives the main writer's words a high posterior and the others' a low one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wrmil_core.detectors.diarization import diarize, log_evidence_one


def _writers(rng: np.random.Generator, d: int, lengths: list[int], b: float) -> np.ndarray:
    return np.concatenate([rng.normal(size=d) * np.sqrt(b) + rng.normal(size=(n, d)) for n in lengths])


def test_one_writer_elbo_is_the_exact_evidence() -> None:
    rng = np.random.default_rng(0)
    between = torch.full((5,), 3.0, dtype=torch.float64)
    z = torch.as_tensor(_writers(rng, 5, [12], 3.0))[None]
    fit = diarize(z, between, 1)
    assert float(fit.elbo[0]) == pytest.approx(float(log_evidence_one(z, between)[0]), abs=1e-9)
    assert torch.all(fit.main_posterior() == 1)


def test_planted_three_writer_sequence() -> None:
    rng = np.random.default_rng(1)
    d, b = 16, 2.0
    between = torch.full((d,), b, dtype=torch.float64)
    # main writer: 30 words; two foreign writers of 6 words each, scattered through the sequence
    x = _writers(rng, d, [30, 6, 6], b)
    who = np.repeat([0, 1, 2], [30, 6, 6])
    order = rng.permutation(len(who))
    z, who = torch.as_tensor(x[order])[None], who[order]
    one = float(log_evidence_one(z, between)[0])
    fits = {k: diarize(z, between, k) for k in (1, 2, 3)}
    gain = {k: float(f.elbo[0]) - one for k, f in fits.items()}
    assert gain[3] > gain[2] > gain[1] + 10  # three writers explain the words far better than one
    post = fits[3].main_posterior()[0].numpy()
    assert post[who == 0].min() > 0.9 and post[who != 0].max() < 0.1
    # the two foreign writers land in different components
    comp = fits[3].gamma[0].argmax(dim=1).numpy()
    assert len({comp[i] for i in np.flatnonzero(who == 1)} | {comp[i] for i in np.flatnonzero(who == 2)}) == 2


def test_one_writer_gains_little_from_more_writers() -> None:
    rng = np.random.default_rng(2)
    d, b = 16, 2.0
    between = torch.full((d,), b, dtype=torch.float64)
    z = torch.as_tensor(np.stack([_writers(rng, d, [42], b) for _ in range(20)]))
    gain = (diarize(z, between, 3).elbo - log_evidence_one(z, between)).numpy()
    assert np.median(gain) < 5
