"""Validation figures that mean something for writers the network never saw.

* Verification: cosine similarity of word pairs (half same-writer, half different-writer, drawn
  reproducibly from ``seed``) -> ROC AUC, EER and TAR at FAR 1e-2 / 1e-3 (sklearn ``roc_curve``).
* Retrieval: each query word ranks every other word by cosine -> top-1 writer accuracy and mean
  average precision of the query writer's other words.
* Multi-word: the mean embedding of ``n`` words of one document against the same of another document
  (:func:`multiword_metrics`): how well a handful of words tells whether two documents share a writer.
* Baseline: downsampled raw pixels (:func:`pixel_features`), to show what training bought.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

from wrmil_core.errors import WrmilInputError

METRIC_KEYS = ("auc", "eer", "tar_far_1e-2", "tar_far_1e-3", "top1", "map")


def sample_pairs(writers: np.ndarray, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, same)`` index pairs: ``n_pairs // 2`` same-writer and as many different-writer pairs.

    Pairs are drawn with replacement (i != j always), reproducibly from ``seed``.
    """
    writers = np.asarray(writers)
    rng = np.random.default_rng(seed)
    uniq, inv, counts = np.unique(writers, return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        raise WrmilInputError(f"verification needs words of at least 2 writers, got {len(uniq)}")
    half = max(1, n_pairs // 2)
    order = np.argsort(inv, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(writers), dtype=np.int64)
    rank[order] = np.arange(len(writers)) - starts[inv[order]]
    eligible = np.flatnonzero(counts[inv] >= 2)
    if len(eligible) == 0:
        raise WrmilInputError("verification needs a writer with at least 2 words")
    a = rng.choice(eligible, half)
    g, c = inv[a], counts[inv[a]]
    b = order[starts[g] + (rank[a] + rng.integers(1, c)) % c]  # another word of the same writer
    na, nb = rng.integers(0, len(writers), half), rng.integers(0, len(writers), half)
    clash = inv[na] == inv[nb]
    while clash.any():  # terminates: there are >= 2 writers
        nb[clash] = rng.integers(0, len(writers), int(clash.sum()))
        clash = inv[na] == inv[nb]
    same = np.concatenate([np.ones(half, bool), np.zeros(half, bool)])
    return np.concatenate([a, na]), np.concatenate([b, nb]), same


def verification_metrics(emb: np.ndarray, writers: np.ndarray, n_pairs: int = 20000, seed: int = 0) -> dict[str, float]:
    """ROC AUC, EER and TAR at FAR 1e-2 / 1e-3 of cosine scores on sampled word pairs."""
    same, scores = pair_scores(emb, writers, n_pairs, seed)
    return {**roc_figures(same, scores), "n_pairs": int(len(same))}


def pair_scores(emb: np.ndarray, writers: np.ndarray, n_pairs: int = 20000,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(same, cosine)`` of the word pairs drawn by :func:`sample_pairs`."""
    emb = _unit(emb)
    i, j, same = sample_pairs(writers, n_pairs, seed)
    return same, np.einsum("nd,nd->n", emb[i], emb[j])


def roc_figures(same: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC, EER and TAR at FAR 1e-2 / 1e-3 of ``scores`` for same-writer (``same``) pairs."""
    fpr, tpr, _ = roc_curve(same, scores)
    fnr = 1 - tpr
    k = int(np.nanargmin(np.abs(fnr - fpr)))

    def tar_at(far: float) -> float:
        ok = fpr <= far
        return float(tpr[ok].max()) if ok.any() else 0.0

    return {
        "auc": float(roc_auc_score(same, scores)),
        "eer": float((fpr[k] + fnr[k]) / 2),
        "tar_far_1e-2": tar_at(1e-2),
        "tar_far_1e-3": tar_at(1e-3),
    }


def retrieval_metrics(emb: np.ndarray, writers: np.ndarray, n_queries: int = 2000, seed: int = 0,
                      chunk: int = 256) -> dict[str, float]:
    """Top-1 writer accuracy and mAP when each query word ranks all other words by cosine
    (the means of :func:`retrieval_per_query`)."""
    _, top1, ap = retrieval_per_query(emb, writers, n_queries, seed, chunk)
    # float32 means, as these figures have always been computed (recorded metrics stay comparable)
    return {"top1": float(torch.from_numpy(top1.astype(np.float32)).mean()),
            "map": float(torch.from_numpy(ap.astype(np.float32)).mean()), "n_queries": int(len(ap))}


def evaluate_embeddings(emb: np.ndarray, writers: np.ndarray, n_pairs: int = 20000, n_queries: int = 2000,
                        seed: int = 0) -> dict[str, float]:
    """All validation figures for embeddings ``emb`` (N, D) of words by ``writers`` (N,)."""
    emb, writers = np.asarray(emb, dtype=np.float32), np.asarray(writers)
    if len(emb) != len(writers) or len(emb) < 2:
        raise WrmilInputError(f"need >= 2 embeddings with one writer each, got {len(emb)} and {len(writers)}")
    out = verification_metrics(emb, writers, n_pairs, seed)
    out.update(retrieval_metrics(emb, writers, n_queries, seed))
    out.update(n_images=int(len(writers)), n_writers=int(len(np.unique(writers))))
    return out


def pooled_metrics(parts: Sequence[tuple[np.ndarray, np.ndarray]], n_pairs: int = 20000, n_queries: int = 2000,
                   seed: int = 0) -> dict[str, float]:
    """Figures pooled over disjoint evaluation sets, e.g. the test writers of each cross-validation fold.

    ``parts`` holds ``(emb, writers)`` per set. Pairs and queries stay within their set (each set
    may come from another model), ``n_pairs`` / ``n_queries`` per set, seeds ``seed + index``. The
    pooled ROC figures come from all sets' pair scores together; top-1 and mAP are means over all
    queries; ``n_writers`` / ``n_images`` are totals.
    """
    if not parts:
        raise WrmilInputError("pooled_metrics needs at least one (embeddings, writers) set")
    same, scores, per = [], [], []
    for f, (emb, writers) in enumerate(parts):
        sm, sc = pair_scores(emb, writers, n_pairs, seed + f)
        same.append(sm)
        scores.append(sc)
        per.append(retrieval_metrics(emb, writers, n_queries, seed + f))
    nq = np.array([r["n_queries"] for r in per], dtype=np.float64)
    out = roc_figures(np.concatenate(same), np.concatenate(scores))
    out.update(
        top1=float(np.dot([r["top1"] for r in per], nq) / nq.sum()),
        map=float(np.dot([r["map"] for r in per], nq) / nq.sum()),
        n_pairs=int(sum(len(s) for s in same)), n_queries=int(nq.sum()),
        n_images=int(sum(len(w) for _, w in parts)), n_writers=int(sum(len(np.unique(w)) for _, w in parts)),
    )
    return out


def pixel_features(x: torch.Tensor, size: tuple[int, int] = (16, 64)) -> torch.Tensor:
    """Raw-pixel baseline features: uint8 images (B, 1, H, W) area-downsampled and flattened."""
    return F.adaptive_avg_pool2d(x.float() / 255.0, size).flatten(1)


def _unit(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def retrieval_per_query(emb: np.ndarray, writers: np.ndarray, n_queries: int = 2000, seed: int = 0,
                        chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(query, top1, ap)`` per query word: the figures :func:`retrieval_metrics` averages.

    Same queries (drawn from ``seed + 1``) and ranking as :func:`retrieval_metrics`; queries whose
    writer has no other word are left out. ``top1`` and ``ap`` are float64 arrays.
    """
    emb_t, writers_t = torch.from_numpy(_unit(emb)), torch.as_tensor(np.array(writers))  # copy: may be read-only
    n = len(writers_t)
    queries = np.sort(np.random.default_rng(seed + 1).choice(n, min(n_queries, n), replace=False))
    ranks = torch.arange(1, n + 1, dtype=torch.float32)
    kept, top1, aps = [], [], []
    for s in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[s : s + chunk])
        rows = torch.arange(len(q))
        sims = emb_t[q] @ emb_t.T
        sims[rows, q] = -float("inf")  # a word never retrieves itself
        rel = writers_t[None, :] == writers_t[q][:, None]
        rel[rows, q] = False
        rel_sorted = torch.gather(rel, 1, torch.argsort(sims, dim=1, descending=True)).float()
        n_rel = rel_sorted.sum(1)
        keep = n_rel > 0
        prec = rel_sorted.cumsum(1) / ranks
        aps.append(((prec * rel_sorted).sum(1) / n_rel.clamp_min(1))[keep])
        top1.append(rel_sorted[:, 0][keep])
        kept.append(q[keep])
    return _cat(kept, np.int64), _cat(top1, np.float64), _cat(aps, np.float64)


def embedding_quality(emb: np.ndarray, writers: np.ndarray, n_pairs: int = 20000, n_queries: int = 2000,
                      seed: int = 0, n_boot: int = 200, level: float = 0.95) -> dict[str, float | int | None]:
    """:func:`evaluate_embeddings`' figures with writer-bootstrap confidence intervals.

    Writers, not pairs, are the independent units: every pair and query of one writer shares that
    writer's hand, so resampling pairs would give intervals far too narrow. The word pairs and
    queries are drawn once, exactly as :func:`evaluate_embeddings` draws them (same ``seed``: the
    point figures are its own, up to float rounding). Each of ``n_boot`` replicates (seeded from
    ``seed``) draws as many writers as there are, with replacement, and counts a same-writer pair
    or a query once per draw of its writer and a different-writer pair once per draw of each of its
    two writers (k_a x k_b), which is the pair and query sample of the resampled writer set. The
    gallery a query ranks stays the full set. For each key of :data:`METRIC_KEYS`, ``<key>_lo`` and
    ``<key>_hi`` are the percentiles of the replicates at ``(1 - level) / 2`` and ``(1 + level) / 2``.
    A replicate without both same- and different-writer pairs (one writer drawn every time) is
    skipped; ``n_boot`` in the result counts the replicates used. With fewer than 3 writers the
    bounds are None: the only usable replicate of 2 writers is the sample itself, a zero-width
    interval that would pretend to a certainty there is not.
    """
    emb, writers = np.asarray(emb, dtype=np.float32), np.asarray(writers)
    if len(emb) != len(writers) or len(emb) < 2:
        raise WrmilInputError(f"need >= 2 embeddings with one writer each, got {len(emb)} and {len(writers)}")
    _, inv = np.unique(writers, return_inverse=True)
    i, j, same = sample_pairs(writers, n_pairs, seed)
    unit = _unit(emb)
    scores = np.einsum("nd,nd->n", unit[i], unit[j])
    query, top1, ap = retrieval_per_query(emb, writers, n_queries, seed)
    out: dict[str, float | int | None] = {**roc_figures(same, scores), "top1": float(top1.mean()),
                                          "map": float(ap.mean())}
    rng = np.random.default_rng([seed, 2])  # its own stream: the pairs and queries above stay as drawn
    n_writers = int(inv.max()) + 1
    reps = []
    for _ in range(n_boot if n_writers >= 3 else 0):
        k = np.bincount(rng.integers(0, n_writers, n_writers), minlength=n_writers)
        w_pair, w_query = np.where(same, k[inv[i]], k[inv[i]] * k[inv[j]]), k[inv[query]]
        if not (w_pair[same].any() and w_pair[~same].any() and w_query.any()):
            continue  # no ROC without same- and different-writer pairs; no mean without a query
        rep = roc_figures(np.repeat(same, w_pair), np.repeat(scores, w_pair))  # integer weights: repeats
        rep.update(top1=float(np.average(top1, weights=w_query)), map=float(np.average(ap, weights=w_query)))
        reps.append([rep[key] for key in METRIC_KEYS])
    bounds = np.quantile(np.array(reps), [(1 - level) / 2, (1 + level) / 2], axis=0) if reps else None
    for c, key in enumerate(METRIC_KEYS):
        out[f"{key}_lo"] = None if bounds is None else float(bounds[0, c])
        out[f"{key}_hi"] = None if bounds is None else float(bounds[1, c])
    out.update(n_pairs=len(same), n_queries=len(query), n_images=len(writers), n_writers=n_writers,
               n_boot=len(reps))
    return out


def _cat(parts: list[torch.Tensor], dtype: type) -> np.ndarray:
    return torch.cat(parts).numpy().astype(dtype) if parts else np.zeros(0, dtype)


# ---- Multi-word figures: is this document by the writer of that one? ----------------------------

MULTIWORD_SIZES: tuple[int, ...] = (1, 3, 5, 10)


def multiword_pairs(writers: np.ndarray, docs: np.ndarray, positions: np.ndarray | None, n: int, n_pairs: int = 4000,
                    seed: int | Sequence[int] = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(group_a, group_b, same)``: word-index groups (M, n) of ``n`` distinct words of one document
    each, ``n_pairs // 2`` same-writer pairs and as many different-writer pairs, or None.

    A document is ``(writer, doc)``; documents with fewer than ``n`` words are never used. A group is
    ``n`` neighbouring words in ``positions`` order (a missing word does not break a run), or, without
    ``positions``, ``n`` words drawn at random from the document. A same-writer pair takes its two
    groups from two different documents of one writer (the first document uniform over the documents
    of writers with two or more, the second uniform over that writer's others); a different-writer
    pair from documents of two writers (both uniform). None when no writer has two usable documents
    or fewer than two writers have one. Reproducible from ``seed``.
    """
    if n < 1:
        raise WrmilInputError(f"a group needs at least one word, got n={n}")
    rng = np.random.default_rng(seed)
    layout = _DocLayout.of(writers, docs, positions)
    ok = np.flatnonzero(layout.counts >= n)
    w_ok = layout.doc_writer[ok]
    uniq, inv, per = np.unique(w_ok, return_inverse=True, return_counts=True)
    multi = np.flatnonzero(per[inv] >= 2)
    if len(multi) == 0 or len(uniq) < 2:
        return None
    half = max(1, n_pairs // 2)
    order = np.argsort(inv, kind="stable")  # usable documents grouped by writer
    starts = np.concatenate([[0], np.cumsum(per)[:-1]])
    rank = np.empty(len(ok), dtype=np.int64)
    rank[order] = np.arange(len(ok)) - starts[inv[order]]
    a = rng.choice(multi, half)
    c = per[inv[a]]
    b = order[starts[inv[a]] + (rank[a] + rng.integers(1, c)) % c]  # another usable document of that writer
    na, nb = rng.integers(0, len(ok), half), rng.integers(0, len(ok), half)
    clash = inv[na] == inv[nb]
    while clash.any():  # terminates: there are >= 2 writers
        nb[clash] = rng.integers(0, len(ok), int(clash.sum()))
        clash = inv[na] == inv[nb]
    doc_a, doc_b = ok[np.concatenate([a, na])], ok[np.concatenate([b, nb])]
    same = np.concatenate([np.ones(half, bool), np.zeros(half, bool)])
    return layout.groups(doc_a, n, rng), layout.groups(doc_b, n, rng), same


def multiword_scores(emb: np.ndarray, group_a: np.ndarray, group_b: np.ndarray) -> np.ndarray:
    """Cosine of the L2-normalised means of each pair's groups of unit word vectors."""
    unit = _unit(emb)
    return np.einsum("nd,nd->n", _group_means(unit, group_a), _group_means(unit, group_b))


def multiword_metrics(emb: np.ndarray, writers: np.ndarray, docs: np.ndarray, positions: np.ndarray | None = None,
                      sizes: Sequence[int] = MULTIWORD_SIZES, n_pairs: int = 4000,
                      seed: int = 0) -> dict[str, float | int | None]:
    """Verification of one document against another by the mean embedding of ``n`` words of each.

    For each ``n`` of ``sizes``: ``auc_n{n}``, ``eer_n{n}`` (:func:`roc_figures`) of the pairs of
    :func:`multiword_pairs` (seed ``[seed, n]``) scored by :func:`multiword_scores`, ``n_pairs_n{n}``,
    and ``n_writers_n{n}`` / ``n_docs_n{n}``: the writers and documents with at least ``n`` words.
    Where no pair can be drawn (no writer has two documents of ``n`` words, or fewer than two writers
    have one) ``auc_n{n}`` and ``eer_n{n}`` are None and ``n_pairs_n{n}`` is 0. ``n_writers``: all writers.
    """
    return pooled_multiword_metrics([(emb, writers, docs, positions)], sizes, n_pairs, seed)


def pooled_multiword_metrics(parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]],
                             sizes: Sequence[int] = MULTIWORD_SIZES, n_pairs: int = 4000,
                             seed: int = 0) -> dict[str, float | int | None]:
    """:func:`multiword_metrics` pooled over disjoint sets (``(emb, writers, docs, positions)`` each,
    e.g. the test words of each cross-validation fold, each embedded by its own model).

    Pairs stay within their set (``n_pairs`` per set, seeds ``[seed + index, n]``); the ROC figures
    come from all sets' pair scores together; a set that gives no pairs at ``n`` adds none. Counts
    are totals over the sets.
    """
    if not parts:
        raise WrmilInputError("multi-word figures need at least one (embeddings, writers, docs, positions) set")
    out: dict[str, float | int | None] = {"n_writers": int(sum(len(np.unique(p[1])) for p in parts))}
    for n in sizes:
        same, scores, n_writers, n_docs = [], [], 0, 0
        for f, (emb, writers, docs, positions) in enumerate(parts):
            layout = _DocLayout.of(writers, docs, positions)
            n_docs += int((layout.counts >= n).sum())
            n_writers += len(np.unique(layout.doc_writer[layout.counts >= n]))
            drawn = multiword_pairs(writers, docs, positions, n, n_pairs, seed=[seed + f, n])
            if drawn is not None:
                same.append(drawn[2])
                scores.append(multiword_scores(emb, drawn[0], drawn[1]))
        fig = roc_figures(np.concatenate(same), np.concatenate(scores)) if same else {"auc": None, "eer": None}
        out.update({f"auc_n{n}": fig["auc"], f"eer_n{n}": fig["eer"], f"n_pairs_n{n}": int(sum(map(len, same))),
                    f"n_writers_n{n}": n_writers, f"n_docs_n{n}": n_docs})
    return out


class _DocLayout:
    """Words grouped by document (``(writer, doc)``), each document's words in position order."""

    def __init__(self, order: np.ndarray, starts: np.ndarray, counts: np.ndarray, doc_writer: np.ndarray,
                 contiguous: bool):
        self.order, self.starts, self.counts, self.doc_writer = order, starts, counts, doc_writer
        self.contiguous = contiguous

    @classmethod
    def of(cls, writers: np.ndarray, docs: np.ndarray, positions: np.ndarray | None) -> _DocLayout:
        w = np.unique(np.asarray(writers), return_inverse=True)[1].astype(np.int64)
        d = np.unique(np.asarray(docs), return_inverse=True)[1].astype(np.int64)
        if len(w) != len(d) or (positions is not None and len(positions) != len(w)):
            raise WrmilInputError(f"need one writer, doc and position per word, got {len(w)}, {len(d)} and "
                                  f"{len(w) if positions is None else len(positions)}")
        keys, doc_of, counts = np.unique(w * (int(d.max(initial=0)) + 1) + d, return_inverse=True, return_counts=True)
        pos = np.arange(len(w)) if positions is None else np.asarray(positions)
        order = np.lexsort((pos, doc_of))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        return cls(order, starts, counts, keys // (int(d.max(initial=0)) + 1), positions is not None)

    def groups(self, doc: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(len(doc), n) word indices: one group of ``n`` words of each document in ``doc``."""
        c = self.counts[doc]
        if self.contiguous:
            off = rng.integers(0, c - n + 1)[:, None] + np.arange(n)
        else:  # the n smallest of random keys over each document's words: a uniform n-subset
            width = int(c.max(initial=n))
            step = max(1, 2**21 // width)  # rows per chunk: keys stay within ~16 MB
            off = np.concatenate([self._sample(c[s : s + step], width, n, rng) for s in range(0, len(c), step)]
                                 or [np.zeros((0, n), np.int64)])
        return self.order[self.starts[doc][:, None] + off]


    @staticmethod
    def _sample(c: np.ndarray, width: int, n: int, rng: np.random.Generator) -> np.ndarray:
        keys = rng.random((len(c), width))
        keys[np.arange(width)[None, :] >= c[:, None]] = np.inf
        return np.argpartition(keys, n - 1, axis=1)[:, :n]


def _group_means(unit: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Unit-length means of the rows of ``unit`` in each group (M, n) -> (M, D), one column at a time."""
    total = unit[groups[:, 0]].astype(np.float64)
    for k in range(1, groups.shape[1]):
        total += unit[groups[:, k]]
    return _unit(total)
