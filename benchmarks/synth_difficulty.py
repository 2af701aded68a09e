"""How hard is the synthetic writer-identification problem? Prints measured figures.

Generates (or reuses) a seeded synthetic set and reports writer-identification accuracy on a
session-disjoint split (train on the first sessions, test on the last one):

* chance level (1 / number of writers);
* 1-nearest-neighbour on raw pixels: word crops scaled to fit 32x128 (aspect kept, padded),
  over all training words and restricted to training words with the same text;
* trivial global statistics per word (crop height, width, mean ink, ink-pixel fraction, ink
  grey level, stroke-width estimate), raw and z-scored within each word text, with kNN and
  logistic regression.

Run:  .venv/bin/python benchmarks/synth_difficulty.py [--writers 40] [--seed 0] [--root DIR]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import distance_transform_edt
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from wrmil_core.imaging import open_image
from wrmil_core.synth import DEMO, METADATA_FILE, SynthConfig, dataset_exists, generate_dataset

STAT_NAMES = ("height", "width", "mean_ink", "ink_fraction", "ink_level", "stroke_width")


def load(root: Path, config: SynthConfig, pix_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """Read the set: pixel vectors (ink = 1 - grey/255), global statistics, labels, words, sessions."""
    ph, pw = pix_hw
    with (root / METADATA_FILE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    pix = np.zeros((len(rows), ph * pw), dtype=np.float32)
    stats = np.zeros((len(rows), len(STAT_NAMES)))
    for i, r in enumerate(rows):
        with open_image(root / r["image_path"]) as im:
            img = im.copy()  # decoded, usable after the file is closed
        a = np.asarray(img, dtype=np.float64)
        ink = 1.0 - a / 255.0
        mask = a < 128
        dt = distance_transform_edt(mask)
        stats[i] = (
            a.shape[0],
            a.shape[1],
            ink.mean(),
            mask.mean(),
            a[mask].mean() if mask.any() else 255.0,
            4.0 * dt[mask].mean() if mask.any() else 0.0,  # mean EDT inside a stroke is ~width/4
        )
        s = min(ph / a.shape[0], pw / a.shape[1])
        small = img.resize((max(1, round(a.shape[1] * s)), max(1, round(a.shape[0] * s))), Image.BILINEAR)
        canvas = Image.new("L", (pw, ph), 255)
        canvas.paste(small, (0, (ph - small.height) // 2))
        pix[i] = 1.0 - np.asarray(canvas, dtype=np.float32).ravel() / 255.0
    rep = np.array([int(r["repetition"]) for r in rows])
    return {
        "pix": pix,
        "stats": stats,
        "writer": np.array([int(r["label"]) for r in rows]),
        "word": np.array([r["detected_word"] for r in rows]),
        "session": rep // config.reps_per_session,
    }


def nn1(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, same: np.ndarray | None = None) -> np.ndarray:
    """1-NN labels by Euclidean distance; ``same`` (n_te, n_tr) bool restricts the candidates."""
    out = np.empty(len(xte), dtype=ytr.dtype)
    sq_tr = (xtr**2).sum(1)
    for a in range(0, len(xte), 1024):
        d = sq_tr[None, :] - 2.0 * xte[a : a + 1024] @ xtr.T
        if same is not None:
            d = np.where(same[a : a + 1024], d, np.inf)
        out[a : a + 1024] = ytr[d.argmin(1)]
    return out


def zscore_within_word(x: np.ndarray, word: np.ndarray) -> np.ndarray:
    """Standardise each statistic within each word text (removes what the word itself explains)."""
    z = np.empty_like(x)
    for w in np.unique(word):
        m = word == w
        z[m] = (x[m] - x[m].mean(0)) / (x[m].std(0) + 1e-9)
    return z


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=DEMO.n_writers)
    ap.add_argument("--sessions", type=int, default=DEMO.n_sessions)
    ap.add_argument("--reps", type=int, default=DEMO.reps_per_session)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--letter-strength", type=float, default=DEMO.letter_strength)
    ap.add_argument("--sample-noise", type=float, default=DEMO.sample_noise)
    ap.add_argument("--root", type=Path, default=None, help="data root (default: a temporary directory)")
    ap.add_argument("--pix", default="32x128", help="pixel-NN input size HxW (aspect kept, padded)")
    args = ap.parse_args()
    if args.sessions < 2:
        ap.error("need >= 2 sessions for a session-disjoint split")

    config = SynthConfig(
        n_writers=args.writers,
        n_sessions=args.sessions,
        reps_per_session=args.reps,
        seed=args.seed,
        workers=args.workers,
        letter_strength=args.letter_strength,
        sample_noise=args.sample_noise,
    )
    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="wrmil_synth_")
        root = Path(tmp.name)
    t0 = time.perf_counter()
    if not dataset_exists(root, config):
        generate_dataset(root, config)
        dt = time.perf_counter() - t0
        print(f"generated {config.n_images} images in {dt:.1f} s ({args.workers} workers)")
    else:
        print(f"reusing {root}")
    ph, pw = (int(v) for v in args.pix.lower().split("x"))
    d = load(root, config, (ph, pw))
    test_session = config.n_sessions - 1
    tr, te = d["session"] != test_session, d["session"] == test_session
    y_tr, y_te = d["writer"][tr], d["writer"][te]

    def acc(pred: np.ndarray) -> float:
        return float((pred == y_te).mean())

    print(
        f"\nsynthetic set: {config.n_writers} writers, seed {config.seed}, {len(d['writer'])} words; "
        f"train sessions 0..{test_session - 1} ({tr.sum()} words), "
        f"test session {test_session} ({te.sum()} words)"
    )
    print(f"{'chance (1/writers)':58s} {1 / config.n_writers:6.3f}")
    same = d["word"][te][:, None] == d["word"][tr][None, :]
    px_tr, px_te = d["pix"][tr], d["pix"][te]
    print(f"{f'pixel 1-NN, {ph}x{pw}, any training word':58s} {acc(nn1(px_tr, y_tr, px_te)):6.3f}")
    print(f"{f'pixel 1-NN, {ph}x{pw}, same word text only':58s} {acc(nn1(px_tr, y_tr, px_te, same)):6.3f}")

    feats = {
        "raw": d["stats"],
        "z-scored within word": zscore_within_word(d["stats"], d["word"]),
    }
    for fname, x in feats.items():
        for mname, model in (
            ("kNN k=5", KNeighborsClassifier(n_neighbors=5)),
            ("logistic", LogisticRegression(max_iter=2000)),
        ):
            clf = make_pipeline(StandardScaler(), model).fit(x[tr], y_tr)
            print(f"{f'global stats ({fname}), {mname}':58s} {acc(clf.predict(x[te])):6.3f}")
    x = feats["z-scored within word"]
    single = []
    for j, name in enumerate(STAT_NAMES):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[tr][:, [j]], y_tr)
        single.append(f"{name} {acc(clf.predict(x[te][:, [j]])):.3f}")
    print("single statistic (z-scored within word), logistic: " + ", ".join(single))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
