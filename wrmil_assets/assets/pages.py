"""Page scans as pipeline input: ``raw_pages`` cuts a page-scan data root into the word-crop layout
that ``raw_words`` then ingests (``wrmil_core/data/pages_layout.py``). On a word-crop data root it
does nothing and ``raw_words`` reads the root as before."""


import dagster as dg
import polars as pl

from wrmil_core.data import pages_layout
from wrmil_core.data.pages_input import data_root_kind

from ..config import preset_config_class, resolve
from ..metadata import to_metadata
from ..resources import WrmilSettings, default_preset

# Which segmenter preset cuts the pages (wrmil_core.pages: default, clean, rtl).
PagesConfig = preset_config_class("PagesConfig", pages_layout.PagesConfig, pages_layout.PRESETS, default_preset())


@dg.asset(group_name="ingest", io_manager_key="parquet_io", kinds={"polars", "parquet"})
def raw_pages(context: dg.AssetExecutionContext, config: PagesConfig, settings: WrmilSettings) -> dg.Output[pl.DataFrame]:
    """The page map of a page-scan data root (one row per word: page, writer, doc_id, word_index, line,
    box, crop path, cache hit), its crops and metadata CSV written under ``<artifact_dir>/pages``.

    Pages are cut once per content (cached by sha256); pages that cannot be read are skipped and
    named, doubtful cuts are flagged with their reasons. Empty for a word-crop data root.
    """
    if data_root_kind(settings.data_root, settings.metadata_csv) == "words":
        context.log.info(f"{settings.data_root} holds word crops: no pages to segment")
        return dg.Output(pl.DataFrame(schema=pages_layout.PAGE_MAP_SCHEMA),
                         metadata={"layout": "word crops", "n_pages": 0, "data_root": settings.data_root})
    cfg = resolve(config, pages_layout.PagesConfig, pages_layout.PRESETS)
    layout = pages_layout.build_page_layout(settings.data_root, settings.artifact_path(pages_layout.LAYOUT_DIR),
                                            cfg, log=context.log.info)
    for page, reasons in layout.flagged.items():
        context.log.warning(f"doubtful cut of {page}: {'; '.join(reasons)} (check {layout.out_dir / 'cache'})")
    for page, error in {**layout.failed, **layout.duplicates}.items():
        context.log.warning(f"skipped page {page}: {error}")
    return dg.Output(layout.page_map, data_version=dg.DataVersion(layout.fingerprint),
                     metadata={"layout": "page scans", **to_metadata(layout.metadata)})
