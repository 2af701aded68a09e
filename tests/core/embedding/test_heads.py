"""Margin heads against a by-hand numpy reference, and fp32 safety under bf16 autocast."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.heads import MarginHead, build_head


def reference_logits(emb: np.ndarray, weight: np.ndarray, labels: np.ndarray, kind: str, s: float, m: float,
                     k: int) -> np.ndarray:
    """The textbook formulas, written independently of the implementation (float64)."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    w = weight / np.linalg.norm(weight, axis=1, keepdims=True)
    cos = e @ w.T  # (B, C*k); rows of weight are class-major: class c owns rows c*k .. c*k+k-1
    if kind == "subcenter":
        cos = cos.reshape(len(e), -1, k).max(axis=2)
    cos = np.clip(cos, -1 + 1e-7, 1 - 1e-7)
    out = cos.copy()
    for i, y in enumerate(labels):
        c = cos[i, y]
        if kind == "cosface":
            out[i, y] = c - m
        else:
            theta = math.acos(c)
            out[i, y] = math.cos(theta + m) if theta + m <= math.pi else c - m * math.sin(m)
    return s * out


def reference_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


@pytest.mark.parametrize("kind,s,m,k", [("arcface", 30.0, 0.5, 1), ("subcenter", 16.0, 0.3, 3), ("cosface", 30.0, 0.35, 1)])
def test_head_matches_by_hand_formula(kind: str, s: float, m: float, k: int) -> None:
    torch.manual_seed(0)
    n_classes, dim = 5, 8
    head = MarginHead(dim, n_classes, kind=kind, s=s, m=m, k=k)
    emb = torch.randn(12, dim)
    labels = torch.arange(12) % n_classes
    # Force the theta + m > pi branch for row 0: embedding opposite to its class centre(s).
    emb[0] = -head.weight.detach()[labels[0] * head.k]
    logits = head.logits(emb, labels)
    ref = reference_logits(emb.double().numpy(), head.weight.detach().double().numpy(), labels.numpy(), kind, s, m, head.k)
    np.testing.assert_allclose(logits.detach().numpy(), ref, rtol=1e-4, atol=1e-4)
    loss = head(emb, labels)
    assert loss.item() == pytest.approx(reference_loss(ref, labels.numpy()), rel=1e-4, abs=1e-4)


def test_margin_lowers_only_the_target_logit() -> None:
    torch.manual_seed(1)
    head = MarginHead(6, 4, kind="arcface", s=10.0, m=0.4)
    emb, labels = torch.randn(7, 6), torch.tensor([0, 1, 2, 3, 0, 1, 2])
    plain = 10.0 * head.cosine(emb)
    logits = head.logits(emb, labels)
    target = torch.zeros_like(plain, dtype=torch.bool).scatter(1, labels.view(-1, 1), True)
    assert torch.equal(logits[~target], plain[~target])
    assert (logits[target] < plain[target]).all()


@pytest.mark.parametrize("kind", ["arcface", "subcenter", "cosface"])
def test_bf16_autocast_keeps_margin_in_fp32_without_nan(kind: str) -> None:
    torch.manual_seed(0)
    head = MarginHead(16, 3, kind=kind, s=64.0, m=0.5, k=2)
    with torch.no_grad():  # axis-aligned centres so cos is exactly +1 / -1, where sqrt(1 - cos^2) is singular
        head.weight.copy_(torch.eye(16)[: head.weight.shape[0]])
    k = head.k  # rows of class c: c*k .. c*k+k-1
    eye = torch.eye(16)
    emb = torch.stack([eye[0], -eye[k], 3 * eye[2 * k], torch.randn(16)]).to(torch.bfloat16).requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 0])
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = head.logits(emb, labels)
        loss = head(emb, labels)
    assert logits.dtype == torch.float32 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(emb.grad).all() and torch.isfinite(head.weight.grad).all()


def test_build_head_follows_config() -> None:
    cfg = EmbeddingConfig(head="subcenter", s=12.0, m=0.2, k_subcenters=4, emb_dim=32)
    head = build_head(cfg, n_classes=7)
    assert (head.kind, head.s, head.m, head.k) == ("subcenter", 12.0, 0.2, 4)
    assert tuple(head.weight.shape) == (28, 32)
    assert head.cosine(torch.randn(5, 32)).shape == (5, 7)
