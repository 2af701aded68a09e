"""How a base bag gets another writer's words: donor choice, the two contamination rules, and the
foreign share of a bag's distinct words.

``word`` mode splices a contiguous passage of consecutive donor words into the base bag's span
and cuts the windows from the mixed sequence (geometry "contiguous"), or puts single donor words
at scattered, pairwise non-adjacent places of the span (geometry "scattered"), or splices two
non-adjacent passages of two different donors (geometry "two_donors"); ``instance`` mode
(the original rule) replaces whole windows of the base bag by windows of one donor document, i.e.
by rows of ``instance_windows``. All return layout rows (indices into the split's
:class:`DocLayout`), never vectors.
"""

from __future__ import annotations

import numpy as np

from wrmil_core.bags.config import two_donor_split
from wrmil_core.bags.layout import DocLayout
from wrmil_core.bags.windows import SplitWindows
from wrmil_core.errors import WrmilInputError


def draw_donor_docs(
    rng: np.random.Generator, base_writer: np.ndarray, eligible: np.ndarray, doc_writer: np.ndarray,
    *, split: str, need: str,
) -> np.ndarray:
    """For each base writer, a uniformly drawn eligible document of *another* writer.

    ``base_writer`` is (n,), or (n, k) writers to avoid per bag (a second donor avoids the base
    writer and the first donor). Vectorised without rejection: eligible docs are grouped by writer,
    and a draw ``u`` over the docs of the other writers skips the avoided writers' blocks in order.
    """
    avoid = base_writer.reshape(base_writer.shape[0], -1)
    c = s = np.zeros(avoid.shape, np.int64)         # avoided writers' eligible docs: count and first index
    if eligible.shape[0]:
        ew = doc_writer[eligible]
        order = np.argsort(ew, kind="stable")
        eligible, ew = eligible[order], ew[order]
        uniq, first, counts = np.unique(ew, return_index=True, return_counts=True)
        pos = np.minimum(np.searchsorted(uniq, avoid), uniq.shape[0] - 1)
        own = uniq[pos] == avoid
        c = np.where(own, counts[pos], 0)
        s = np.where(own, first[pos], 0)
        by_start = np.argsort(s, axis=1, kind="stable")   # skip the blocks left to right
        c, s = np.take_along_axis(c, by_start, 1), np.take_along_axis(s, by_start, 1)
    n_other = eligible.shape[0] - c.sum(1)
    if (n_other <= 0).any():
        w = avoid[np.flatnonzero(n_other <= 0)[0]].tolist()
        who = f"writer {w[0]}" if len(w) == 1 else f"writer {w[0]} besides donor(s) {w[1:]}"
        raise WrmilInputError(
            f"split {split!r}: no donor for {who}: no other writer of the split has a document "
            f"with {need}. Contaminated bags need a second writer in the same split; give the split "
            "more writers (see writer_split) or longer documents."
        )
    u = np.floor(rng.random(avoid.shape[0]) * n_other).astype(np.int64)
    for j in range(avoid.shape[1]):
        u = np.where(u < s[:, j], u, u + c[:, j])
    return eligible[u]


def distinct_foreign_frac(rows: np.ndarray, foreign: np.ndarray) -> np.ndarray:
    """Per bag: foreign share of the distinct words. ``rows``/``foreign`` are (B, L) word keys and
    flags (a word's flag must not depend on which slot holds it)."""
    order = np.argsort(rows, axis=1, kind="stable")
    r = np.take_along_axis(rows, order, axis=1)
    f = np.take_along_axis(foreign, order, axis=1)
    first = np.ones(r.shape, bool)
    first[:, 1:] = r[:, 1:] != r[:, :-1]
    return (first & f).sum(1) / first.sum(1)


def contaminate_word(
    rng: np.random.Generator, lay: DocLayout, base_row: np.ndarray, base_writer: np.ndarray,
    f: int, n_words: int, template: np.ndarray, split: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word mode: splice ``f`` consecutive donor words into each base span at a seeded offset.

    ``base_row`` is the layout row of each base bag's first word and ``template`` the config's
    window template; returns layout rows and foreign flags, both (n, bag_size, window_size), and
    the donor writers.
    """
    n = base_row.shape[0]
    eligible = np.flatnonzero(lay.length >= f)
    donor_doc = draw_donor_docs(rng, base_writer, eligible, lay.doc_writer, split=split, need=f"at least {f} words")
    donor_row = lay.offset[donor_doc] + np.floor(rng.random(n) * (lay.length[donor_doc] - f + 1)).astype(np.int64)
    off = np.floor(rng.random(n) * (n_words - f + 1)).astype(np.int64)
    j = np.arange(n_words, dtype=np.int64)[None, :]
    foreign = (j >= off[:, None]) & (j < (off + f)[:, None])                         # (n, S)
    seq = np.where(foreign, donor_row[:, None] + (j - off[:, None]), base_row[:, None] + j)
    return seq[:, template], foreign[:, template], lay.doc_writer[donor_doc]          # (n, bag, ws) x2


def sorted_sample(rng: np.random.Generator, population: np.ndarray, k: int) -> np.ndarray:
    """Per row, ``k`` distinct values of ``range(population[i])`` drawn uniformly, ascending: (n, k)."""
    top = int(population.max()) if population.shape[0] else k
    keys = rng.random((population.shape[0], top))
    keys[np.arange(top)[None, :] >= population[:, None]] = 2.0        # never drawn: beyond the range
    return np.sort(np.argsort(keys, axis=1, kind="stable")[:, :k], axis=1)


def contaminate_scattered(
    rng: np.random.Generator, lay: DocLayout, base_row: np.ndarray, base_writer: np.ndarray,
    f: int, n_words: int, template: np.ndarray, split: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word mode, scattered: ``f`` distinct words of one donor document, kept in their reading
    order, replace the base words at ``f`` pairwise non-adjacent places of each base span.

    The places are uniform over all non-adjacent sets: ``c`` is ``f`` distinct sorted values of
    ``range(n_words - f + 1)`` and the places are ``c + arange(f)`` (gaps of at least two).
    Returns layout rows and foreign flags, both (n, bag_size, window_size), and the donor writers.
    """
    n = base_row.shape[0]
    eligible = np.flatnonzero(lay.length >= f)
    donor_doc = draw_donor_docs(rng, base_writer, eligible, lay.doc_writer, split=split, need=f"at least {f} words")
    donor_row = lay.offset[donor_doc][:, None] + sorted_sample(rng, lay.length[donor_doc], f)
    place = sorted_sample(rng, np.full(n, n_words - f + 1), f) + np.arange(f)
    seq = base_row[:, None] + np.arange(n_words, dtype=np.int64)[None, :]
    foreign = np.zeros(seq.shape, bool)
    np.put_along_axis(seq, place, donor_row, axis=1)
    np.put_along_axis(foreign, place, True, axis=1)
    return seq[:, template], foreign[:, template], lay.doc_writer[donor_doc]


def contaminate_two_donors(
    rng: np.random.Generator, lay: DocLayout, base_row: np.ndarray, base_writer: np.ndarray,
    f: int, n_words: int, template: np.ndarray, split: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Word mode, two donors: two passages of consecutive words, each from one document of its own
    donor writer (the two donors differ, neither is the base writer), replace base words at two
    non-adjacent places of each base span; together they hold ``f >= 2`` words, split as evenly as
    possible (which passage gets the odd word is drawn per bag).

    The places are uniform over all layouts with at least one base word between the passages: with
    ``c1 < c2`` drawn from ``range(n_words - f + 1)``, the first passage (``a`` words) starts at
    ``c1`` and the second at ``c2 + a``. Returns layout rows and foreign flags, both (n, bag_size,
    window_size), and the writers of the first and the second passage in reading order.
    """
    n = base_row.shape[0]
    long_half, short_half = two_donor_split(f)
    a = np.where(rng.random(n) < 0.5, long_half, short_half).astype(np.int64)     # first passage's length
    eligible = np.flatnonzero(lay.length >= long_half)
    need = f"at least {long_half} words"
    doc1 = draw_donor_docs(rng, base_writer, eligible, lay.doc_writer, split=split, need=need)
    avoid = np.stack([base_writer, lay.doc_writer[doc1]], axis=1)
    doc2 = draw_donor_docs(rng, avoid, eligible, lay.doc_writer, split=split, need=need)
    length = np.stack([a, f - a], axis=1)                                          # (n, 2) passage lengths
    docs = np.stack([doc1, doc2], axis=1)
    donor_row = lay.offset[docs] + np.floor(rng.random((n, 2)) * (lay.length[docs] - length + 1)).astype(np.int64)
    c = sorted_sample(rng, np.full(n, n_words - f + 1), 2)
    start = np.stack([c[:, 0], c[:, 1] + a], axis=1)                               # (n, 2) passage starts
    j = np.arange(n_words, dtype=np.int64)[None, :]
    seq = base_row[:, None] + j
    foreign = np.zeros(seq.shape, bool)
    for p in range(2):
        inside = (j >= start[:, p:p + 1]) & (j < start[:, p:p + 1] + length[:, p:p + 1])
        seq = np.where(inside, donor_row[:, p:p + 1] + (j - start[:, p:p + 1]), seq)
        foreign |= inside
    return seq[:, template], foreign[:, template], lay.doc_writer[doc1], lay.doc_writer[doc2]


def contaminate_instance(
    rng: np.random.Generator, lay: DocLayout, windows: SplitWindows, base_window: np.ndarray,
    base_writer: np.ndarray, k: int, bag_size: int, split: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instance mode (original rule): replace ``k`` whole windows at seeded positions by windows
    drawn uniformly from one donor document's windows (rows of ``instance_windows``).

    ``base_window`` is each base bag's first window; returns layout rows and foreign flags, both
    (n, bag_size, window_size), and the donor writers.
    """
    n = base_window.shape[0]
    eligible = np.flatnonzero(windows.count > 0)
    donor_doc = draw_donor_docs(rng, base_writer, eligible, lay.doc_writer, split=split,
                                need=f"at least {windows.window_size} words")
    slots = np.argsort(rng.random((n, bag_size)), axis=1)[:, :k]
    replaced = np.zeros((n, bag_size), bool)
    np.put_along_axis(replaced, slots, True, axis=1)
    pick = np.floor(rng.random((n, bag_size)) * windows.count[donor_doc][:, None]).astype(np.int64)
    donor_window = windows.first[donor_doc][:, None] + pick
    window = np.where(replaced, donor_window, base_window[:, None] + np.arange(bag_size, dtype=np.int64))
    rows = windows.rows(window)
    return rows, np.broadcast_to(replaced[:, :, None], rows.shape), lay.doc_writer[donor_doc]
