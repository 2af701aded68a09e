"""Page scans -> the raw word-crop layout that ``wrmil_core.data.ingest`` reads.

Every page of a page-scan data root (:mod:`wrmil_core.data.pages_input`) is cut into words by
:mod:`wrmil_core.pages`, and the results are kept per page under ``<out>/cache/`` by content: the
key is the sha256 of the page file plus a hash of the segmenter's settings, so an unchanged page
is never segmented again (a renamed or moved page neither), and a changed page or segmenter
setting is. The layout written under ``<out>``::

    cache/<key>/0000.png ...     the word crops of one page, in reading order
    cache/<key>.parquet          its page map (boxes, lines; doubts in the file's metadata)
    cache/<key>.overlay.png      the page with numbered boxes, to check the cut by eye
    words.csv                    the metadata CSV: image_path,label,detected_word,repetition,doc_id,word_index
                                 (+ page, page_sha256, line, x0, y0, x1, y1, which ingest ignores)
    layout.json                  which data root the layout was built from, and its counts

``label`` is the writer, ``detected_word`` is empty (no transcription), ``repetition`` the page's
number among its writer's pages, ``word_index`` the reading order through the document's pages.
Pages that cannot be read or are not pages are skipped and named; doubtful cuts are kept and
flagged; a page whose bytes equal an earlier page's is skipped as a duplicate.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from wrmil_core import pages, presets
from wrmil_core.data.fingerprint import metadata_fingerprint
from wrmil_core.data.pages_input import PageRecord, data_root_kind, list_pages
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, progress, speaker

LAYOUT_DIR = "pages"  # under the artifact dir
LAYOUT_CSV = "words.csv"
LAYOUT_RECORD = "layout.json"
CACHE_DIR = "cache"
LAYOUT_COLUMNS: tuple[str, ...] = ("image_path", "label", "detected_word", "repetition", "doc_id", "word_index",
                                   "page", "page_sha256", "line", "x0", "y0", "x1", "y1")
PAGE_MAP_SCHEMA: dict[str, Any] = {
    "page": pl.String, "page_sha256": pl.String, "writer": pl.Int64, "doc_id": pl.String, "word_index": pl.Int64,
    "line": pl.Int64, "position": pl.Int64, "x0": pl.Int64, "y0": pl.Int64, "x1": pl.Int64, "y1": pl.Int64,
    "image_path": pl.String, "cache_hit": pl.Boolean,
}


@dataclass(frozen=True)
class PagesConfig:
    """How the ``raw_pages`` asset cuts page scans into words.

    segmenter: a ``wrmil_core.pages`` preset: ``default`` (Sauvola), ``clean`` (Otsu, evenly lit
        scans) or ``rtl`` (right-to-left reading order).
    """

    segmenter: str = "default"

    def __post_init__(self) -> None:
        if self.segmenter not in pages.PRESETS:
            raise WrmilInputError(f"PagesConfig.segmenter={self.segmenter!r}: choose one of {sorted(pages.PRESETS)}")

    @property
    def segment_config(self) -> pages.SegmentConfig:
        return pages.PRESETS[self.segmenter]


DEFAULT = PagesConfig()
# One entry per run preset (`wrmil run --preset`): nothing to tune per preset.
PRESETS: dict[str, PagesConfig] = {"demo": DEFAULT, "paper": DEFAULT, "cpu": DEFAULT, "gpu": DEFAULT}


def preset(name: str, **overrides: Any) -> PagesConfig:
    """A named preset with field overrides, e.g. ``preset("cpu", segmenter="clean")``."""
    return presets.preset(PRESETS, name, **overrides)


@dataclass
class PageCut:
    """One page's words: ``boxes`` (the page map), ``doubtful`` reasons, cache ``key``, ``cache_hit``."""

    key: str
    sha256: str
    boxes: pl.DataFrame
    doubtful: list[str]
    cache_hit: bool


def cache_key(sha256: str, config: pages.SegmentConfig) -> str:
    """The cache entry of a page: its content hash and a hash of the segmenter's settings."""
    settings = json.dumps(dataclasses.asdict(config), sort_keys=True).encode()
    return f"{sha256[:32]}-{hashlib.sha256(settings).hexdigest()[:12]}"


def cut_page(path: Path, sha256: str, cache_dir: Path, config: pages.SegmentConfig) -> PageCut:
    """The words of one page, from the cache when its entry is complete, else segmented and stored.

    Raises :class:`WrmilInputError` for an unreadable file or an image that is not a page.
    """
    key = cache_key(sha256, config)
    map_path, overlay = cache_dir / f"{key}.parquet", cache_dir / f"{key}.overlay.png"
    # The overlay is written last, so its presence says the crops and the map are complete.
    if map_path.is_file() and overlay.is_file():
        try:
            doubtful = json.loads((pq.read_schema(map_path).metadata or {}).get(b"doubtful", b"[]"))
            return PageCut(key, sha256, pl.read_parquet(map_path).select(pages.BOX_COLUMNS), doubtful, True)
        except (OSError, ValueError, pl.exceptions.PolarsError):  # a damaged entry (disk full, killed copy) is
            # rebuilt, never trusted (pyarrow's ArrowInvalid and JSON errors are ValueErrors)
            overlay.unlink(missing_ok=True)
    image = pages.read_page(path)
    seg = pages.segment_page(image, config, name=str(path))
    pages.write_segmentation(seg, image, cache_dir, key)
    return PageCut(key, sha256, seg.boxes.select(pages.BOX_COLUMNS), list(seg.doubtful), False)


@dataclass
class PageLayout:
    """What :func:`build_page_layout` wrote: the combined page map (one row per word, ``PAGE_MAP_SCHEMA``),
    the metadata CSV, and per page the doubts, failures and duplicates."""

    root: Path
    out_dir: Path
    page_map: pl.DataFrame
    n_pages: int
    cache_hits: int
    flagged: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    fingerprint: str = ""  # sha256 of the written metadata CSV (it holds every page's hash and every box)

    @property
    def csv_path(self) -> Path:
        return self.out_dir / LAYOUT_CSV


    @property
    def metadata(self) -> dict[str, Any]:
        """Counts and reasons for the asset's materialisation metadata."""
        pm = self.page_map
        return {
            "n_pages": self.n_pages, "n_pages_used": pm["page"].n_unique(), "n_words": pm.height,
            "n_writers": pm["writer"].n_unique(), "n_documents": pm["doc_id"].n_unique(),
            "n_cache_hits": self.cache_hits, "n_segmented": self.n_pages - self.cache_hits - len(self.failed)
            - len(self.duplicates), "n_flagged": len(self.flagged), "flagged": self.flagged or None,
            "n_failed": len(self.failed), "failed": self.failed or None, "n_duplicate_pages": len(self.duplicates),
            "duplicate_pages": self.duplicates or None, "layout_csv": str(self.csv_path),
            "data_root": str(self.root), "seconds": round(self.seconds, 2),
        }


def build_page_layout(root: str | Path, out_dir: str | Path, config: PagesConfig = DEFAULT,
                      log: Log = None) -> PageLayout:
    """Cut every page of the page-scan root ``root`` into words (cached) and write the word-crop layout
    under ``out_dir`` (see the module docstring). Raises :class:`WrmilInputError` for a bad page name or
    ``pages.csv``, or when no page could be used."""
    t0, say = time.perf_counter(), speaker(log)
    root, out_dir = Path(root).expanduser().absolute(), Path(out_dir)
    records = list_pages(root)
    cache_dir = out_dir / CACHE_DIR
    cache_dir.mkdir(parents=True, exist_ok=True)
    layout = PageLayout(root=root, out_dir=out_dir, page_map=pl.DataFrame(schema=PAGE_MAP_SCHEMA),
                        n_pages=len(records), cache_hits=0)
    cuts = _cut_pages(records, cache_dir, config.segment_config, layout, say)
    if not cuts:
        raise WrmilInputError(f"data root {root}: none of its {len(records)} page(s) could be used: "
                              + "; ".join(list(layout.failed.values())[:3] + list(layout.duplicates.values())[:1]))
    layout.page_map = _page_map(cuts)
    _write_csv(layout.page_map, layout.csv_path)
    layout.fingerprint = metadata_fingerprint(layout.csv_path)
    layout.seconds = time.perf_counter() - t0
    _write_record(layout)
    say(f"pages: {len(cuts)} of {len(records)} page(s) -> {layout.page_map.height} words, {layout.cache_hits} from "
        f"the cache, {len(layout.flagged)} flagged, {len(layout.failed)} failed ({layout.seconds:.1f} s) -> {out_dir}")
    return layout


def _cut_pages(records: list[PageRecord], cache_dir: Path, config: pages.SegmentConfig, layout: PageLayout,
               say: Any) -> list[tuple[PageRecord, PageCut]]:
    """Every usable page with its cut; failures, duplicates, doubts and cache hits go into ``layout``."""
    cuts: list[tuple[PageRecord, PageCut]] = []
    first_of: dict[str, str] = {}
    for record in progress(records, desc="segmenting pages", unit="page"):
        try:
            sha = metadata_fingerprint(record.path)  # the file's sha256
        except OSError as e:
            layout.failed[record.rel] = f"{record.path}: cannot be read ({e.strerror or e}); check its permissions"
            continue
        if sha in first_of:
            layout.duplicates[record.rel] = f"{record.rel} has the same bytes as {first_of[sha]}"
            say(f"pages: skipped {layout.duplicates[record.rel]}")
            continue
        first_of[sha] = record.rel
        try:
            cut = cut_page(record.path, sha, cache_dir, config)
        except WrmilInputError as e:
            layout.failed[record.rel] = str(e)
            say(f"pages: skipped {e}")
            continue
        layout.cache_hits += cut.cache_hit
        if cut.doubtful:
            layout.flagged[record.rel] = cut.doubtful
        cuts.append((record, cut))
    return cuts


def _page_map(cuts: list[tuple[PageRecord, PageCut]]) -> pl.DataFrame:
    """All pages' boxes in document reading order, with writer, document and crop path."""
    frames = [cut.boxes.with_columns(
        pl.lit(r.rel).alias("page"), pl.lit(cut.sha256).alias("page_sha256"), pl.lit(r.writer, pl.Int64).alias("writer"),
        pl.lit(r.doc_id).alias("doc_id"), pl.lit(cut.cache_hit).alias("cache_hit"),
        pl.format(f"{CACHE_DIR}/{cut.key}/{{}}.png", pl.col("word_index").cast(pl.String).str.zfill(4)).alias("image_path"),
    ) for r, cut in cuts]
    # Pages arrive sorted by (doc_id, order): the running index is the reading order through the document.
    pm = pl.concat(frames).with_columns(pl.int_range(pl.len()).over("doc_id").alias("word_index"))
    return pm.select(list(PAGE_MAP_SCHEMA)).cast(PAGE_MAP_SCHEMA)  # type: ignore[arg-type]


def _write_csv(page_map: pl.DataFrame, path: Path) -> None:
    """The word-crop metadata CSV (atomic: a reader never sees half a file)."""
    # repetition: the page's number among its writer's pages, in reading order
    new_page = (pl.col("page") != pl.col("page").shift(1)).fill_null(True).cast(pl.Int64)
    rows = page_map.with_columns((new_page.cum_sum().over("writer") - 1).alias("repetition"),
                                 pl.lit("").alias("detected_word")).rename(
        {"writer": "label"}).select(LAYOUT_COLUMNS)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(LAYOUT_COLUMNS)
        writer.writerows(rows.iter_rows())
    os.replace(tmp, path)


def _write_record(layout: PageLayout) -> None:
    record = {k: v for k, v in layout.metadata.items() if not isinstance(v, dict)}
    tmp = layout.out_dir / (LAYOUT_RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, layout.out_dir / LAYOUT_RECORD)


def layout_for(data_root: str | Path, out_dir: str | Path) -> Path:
    """The metadata CSV of the layout ``raw_pages`` built from ``data_root`` in ``out_dir``; refused
    when it is missing or was built from another data root."""
    out_dir, root = Path(out_dir), Path(data_root).expanduser().absolute()
    record_path = out_dir / LAYOUT_RECORD
    built_from = json.loads(record_path.read_text()).get("data_root") if record_path.is_file() else None
    if built_from is None or not (out_dir / LAYOUT_CSV).is_file():
        raise WrmilInputError(f"data root {root} holds page scans, but their word layout is not built yet "
                              f"({out_dir / LAYOUT_CSV} missing); materialise raw_pages first "
                              "(`wrmil run` and the ingest job do)")
    if Path(built_from) != root:
        raise WrmilInputError(f"the page layout in {out_dir} was built from {built_from}, not from {root}; "
                              "materialise raw_pages again (`wrmil run --job ingest`)")
    return out_dir / LAYOUT_CSV


def ingest_source(data_root: str | Path, metadata_csv: str, artifact_dir: str | Path) -> tuple[Path, str]:
    """``(root, metadata CSV)`` that ingest reads for ``data_root``: the root itself for word crops, the
    layout ``raw_pages`` built under ``<artifact_dir>/pages`` for page scans; a root holding neither
    layout is refused in one line (:func:`~wrmil_core.data.pages_input.data_root_kind`)."""
    if data_root_kind(data_root, metadata_csv) == "words":
        return Path(data_root), metadata_csv
    out_dir = Path(artifact_dir) / LAYOUT_DIR
    return out_dir, layout_for(data_root, out_dir).name
