"""The learned multiple-instance models that flag multi-writer bags.

Every model takes a bag tensor ``x`` of shape ``(B, n_win, n_words, dim)`` and returns
``(bag_logit (B,), window_scores (B, n_win))``; a higher window score means "more likely foreign".
They subclass :class:`wrmil_core.detectors.base.MILModel` (whose class attributes say what a model
is) and are created by name through :mod:`wrmil_core.mil.registry`, beside the training-free
detectors of :mod:`wrmil_core.detectors`, so a saved JSON config can rebuild them.

- ``abmil``: the original attention pooling (each window scored on its own); baseline.
- ``gated_abmil``: gated attention (Ilse, Tomczak & Welling 2018).
- ``contrast``: per-window features of its similarity to the rest of its bag (writer-agnostic),
  a small MLP per window, smooth-max pooling. Permutation invariant.
- ``set_transformer``: self-attention across the windows of a bag (no positional encoding),
  per-window scores, smooth-max pooling. Permutation invariant.

Every one is invariant to the order of the windows (``window_order_invariant``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wrmil_core.detectors._batch import full_precision
from wrmil_core.detectors.base import MILModel
from wrmil_core.detectors.distance import EPS, loo_mean


def _smooth_max(scores: torch.Tensor) -> torch.Tensor:
    """log-mean-exp over windows: between mean and max, permutation invariant, gradient to all."""
    return torch.logsumexp(scores, dim=1) - math.log(scores.shape[1])


class ABMIL(MILModel):
    """The original model: mean over words, tanh attention, softmax over windows, ReLU, Linear."""

    name = "abmil"
    window_output = "attention"

    def __init__(self, dim: int, attn_hidden: int = 128) -> None:
        super().__init__(dim, attn_hidden=attn_hidden)
        self.attention = nn.Sequential(nn.Linear(dim, attn_hidden), nn.Tanh(), nn.Linear(attn_hidden, 1))
        self.classifier = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.mean(dim=2)
        a = torch.softmax(self.attention(h).squeeze(-1), dim=1)
        z = torch.einsum("bw,bwd->bd", a, h)
        return self.classifier(F.relu(z)).squeeze(-1), a


class GatedABMIL(MILModel):
    """Gated attention MIL (Ilse et al. 2018): a = w^T (tanh(V h) * sigmoid(U h)), softmax over windows."""

    name = "gated_abmil"
    window_output = "attention"

    def __init__(self, dim: int, hidden: int = 128, attn_hidden: int = 128, dropout: float = 0.0) -> None:
        super().__init__(dim, hidden=hidden, attn_hidden=attn_hidden, dropout=dropout)
        self.features = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.attn_v = nn.Linear(hidden, attn_hidden)
        self.attn_u = nn.Linear(hidden, attn_hidden)
        self.attn_w = nn.Linear(attn_hidden, 1)
        self.classifier = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x.mean(dim=2))
        logits = self.attn_w(torch.tanh(self.attn_v(h)) * torch.sigmoid(self.attn_u(h))).squeeze(-1)
        a = torch.softmax(logits, dim=1)
        z = torch.einsum("bw,bwd->bd", a, h)
        return self.classifier(z).squeeze(-1), a


@full_precision
def contrast_features(x: torch.Tensor) -> torch.Tensor:
    """Writer-agnostic features of each window relative to the rest of its bag, ``(B, W, 9)``.

    Window level (mean embedding per window): cosine distance from the leave-one-out mean of the
    other windows; mean / min / max cosine similarity to the other windows; norm of the window
    mean (low when the window's own words disagree, e.g. at the edge of a foreign passage).
    Word level: each word's cosine distance from the leave-one-out window mean, max and mean over
    the window's words (one foreign word in five is diluted in the window mean, not here);
    minimum pairwise word similarity inside the window.
    """
    b, w, t, d = x.shape
    h = x.mean(dim=2)
    hn = F.normalize(h, dim=-1, eps=EPS)
    loo = F.normalize(loo_mean(h), dim=-1, eps=EPS)
    loo_dist = 1.0 - (hn * loo).sum(-1)
    sim = hn @ hn.transpose(1, 2)
    eye = torch.eye(w, dtype=torch.bool, device=x.device)
    others = ~eye
    n_others = max(w - 1, 1)
    mean_sim = (sim * others).sum(-1) / n_others
    min_sim = sim.masked_fill(eye, float("inf")).amin(-1) if w > 1 else torch.ones_like(mean_sim)
    max_sim = sim.masked_fill(eye, float("-inf")).amax(-1) if w > 1 else torch.ones_like(mean_sim)
    coherence = h.norm(dim=-1)
    xn = F.normalize(x, dim=-1, eps=EPS)
    word_dist = 1.0 - (xn * loo.unsqueeze(2)).sum(-1)  # (B, W, T)
    word_sim = xn @ xn.transpose(2, 3)  # (B, W, T, T)
    eye_t = torch.eye(t, dtype=torch.bool, device=x.device)
    min_word_sim = word_sim.masked_fill(eye_t, float("inf")).amin((-1, -2)) if t > 1 else torch.ones_like(mean_sim)
    return torch.stack(
        [loo_dist, mean_sim, min_sim, max_sim, coherence,
         word_dist.amax(-1), word_dist.mean(-1), min_word_sim, 1.0 - mean_sim], dim=-1)


class ContrastMIL(MILModel):
    """Scores each window from features of its similarity to the rest of its bag.

    The features (:func:`contrast_features`) and their deviation from the bag's average are fed to
    a per-window MLP; bag logit = smooth max of the window logits. It never sees writer identity,
    so it transfers to unseen writers; it is invariant to the order of windows.
    """

    name = "contrast"
    window_output = "logit"
    n_features = 9

    def __init__(self, dim: int, hidden: int = 64, dropout: float = 0.0) -> None:
        super().__init__(dim, hidden=hidden, dropout=dropout)
        f = 2 * self.n_features
        self.norm = nn.LayerNorm(f)
        self.mlp = nn.Sequential(
            nn.Linear(f, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = contrast_features(x)
        # Relative to the bag: a window is suspicious when it is less similar than its neighbours.
        feats = torch.cat([feats, feats - feats.mean(dim=1, keepdim=True)], dim=-1)
        s = self.mlp(self.norm(feats)).squeeze(-1)
        return _smooth_max(s), s


class SetTransformerMIL(MILModel):
    """Self-attention across the windows of a bag (no positional encoding), per-window scores.

    Input per window: its normalised mean embedding and its deviation from the bag mean; a stack
    of Transformer encoder layers lets every window attend to the others; a linear head gives a
    window logit; bag logit = smooth max. Permutation equivariant per window, invariant per bag.
    """

    name = "set_transformer"
    window_output = "logit"

    def __init__(self, dim: int, d_model: int = 64, n_heads: int = 4, n_layers: int = 2,
                 dropout: float = 0.1, inputs: str = "contrast", pool: str = "max") -> None:
        super().__init__(dim, d_model=d_model, n_heads=n_heads, n_layers=n_layers, dropout=dropout, inputs=inputs,
                         pool=pool)
        if pool not in ("lse", "max", "mean"):
            raise ValueError(f"pool must be 'lse', 'max' or 'mean', got {pool!r}")
        self.pool = pool
        if inputs not in ("embedding", "contrast", "both"):
            raise ValueError(f"inputs must be 'embedding', 'contrast' or 'both', got {inputs!r}")
        self.inputs = inputs
        n_in = {"embedding": 2 * dim, "contrast": ContrastMIL.n_features, "both": 2 * dim + ContrastMIL.n_features}[inputs]
        self.proj = nn.Sequential(nn.LayerNorm(n_in), nn.Linear(n_in, d_model))
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = []
        if self.inputs in ("embedding", "both"):
            h = F.normalize(x.mean(dim=2), dim=-1, eps=EPS)
            parts += [h, h - h.mean(dim=1, keepdim=True)]
        if self.inputs in ("contrast", "both"):
            parts.append(contrast_features(x))
        z = self.encoder(self.proj(torch.cat(parts, dim=-1)))
        s = self.head(z).squeeze(-1)
        bag = {"lse": _smooth_max, "max": lambda v: v.amax(dim=1), "mean": lambda v: v.mean(dim=1)}[self.pool](s)
        return bag, s


LEARNED: tuple[type[MILModel], ...] = (ABMIL, GatedABMIL, ContrastMIL, SetTransformerMIL)

__all__ = ["ABMIL", "LEARNED", "ContrastMIL", "GatedABMIL", "SetTransformerMIL", "contrast_features"]
