"""Page scans through the Dagster layer: raw_pages -> the word layout -> raw_words (cache hits on a
rerun, word-crop roots unchanged, clear refusals), ``wrmil run`` on a page root, and ``wrmil score PAGE.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageOps

from tests.support.pages import csafe_name, write_csafe_root, write_scoring_page
from tests.support.raw_root import make_raw_root
from tests.support.scoring import FOREIGN, scoring_setup
from wrmil_assets.assets import pages, raw
from wrmil_assets.automation import JOB_STAGES
from wrmil_assets.io_managers import JsonIOManagerFactory, ParquetIOManagerFactory
from wrmil_assets.resources import WrmilSettings
from wrmil_core import synth
from wrmil_core.errors import WrmilInputError

INGEST = [pages.raw_pages, raw.raw_words, raw.writer_split]
WRITERS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def page_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five writers, one tiny synthetic page each (CSAFE names): one document per writer."""
    return write_csafe_root(tmp_path_factory.mktemp("page_root") / "pages", writers=WRITERS)


def _resources(root: Path, art: Path) -> dict[str, Any]:
    io = str(art / "assets")
    return {"settings": WrmilSettings(data_root=str(root), artifact_dir=str(art)),
            "parquet_io": ParquetIOManagerFactory(base_dir=io), "json_io": JsonIOManagerFactory(base_dir=io)}


def _materialise(assets: list, root: Path, art: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, instance=instance, resources=_resources(root, art))


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    mat = result.asset_materializations_for_node(asset)[0]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _data_version(instance: dg.DagsterInstance, asset: str) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return event.asset_materialization.tags["dagster/data_version"]


def test_pages_become_raw_words_and_a_rerun_hits_the_cache(page_root: Path, tmp_path: Path) -> None:
    art = tmp_path / "art"
    with dg.DagsterInstance.ephemeral() as instance:
        first = _materialise(INGEST, page_root, art, instance)
        assert first.success
        md = _metadata(first, "raw_pages")
        assert (md["layout"], md["n_pages"], md["n_cache_hits"], md["n_segmented"], md["n_failed"]) == (
            "page scans", 5, 0, 5, 0)
        page_map = pl.read_parquet(art / "assets" / "raw_pages.parquet")
        words = pl.read_parquet(art / "assets" / "raw_words.parquet")
        assert md["n_words"] == page_map.height == words.height > 5 * 30
        assert words["writer"].unique().sort().to_list() == list(WRITERS)
        assert words["doc_id"].unique().sort().to_list() == [f"{w}_s1" for w in WRITERS]
        assert all(Path(p).is_relative_to(art / "pages" / "cache") and Path(p).is_file() for p in words["path"])
        assert _metadata(first, "raw_words")["data_root"] == str(page_root)
        assert {e.check_name: e.passed for e in first.get_asset_check_evaluations()}["writers_disjoint"]
        version = _data_version(instance, "raw_words")

        again = _materialise(INGEST, page_root, art, instance)
        md = _metadata(again, "raw_pages")
        assert (md["n_cache_hits"], md["n_segmented"]) == (5, 0)
        assert _data_version(instance, "raw_words") == version  # nothing downstream goes stale
        assert pl.read_parquet(art / "assets" / "raw_words.parquet").equals(words)


def test_word_crop_roots_are_read_as_before(tmp_path: Path) -> None:
    root = make_raw_root(tmp_path, n_writers=5, n_reps=4)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialise(INGEST, root, tmp_path / "art", instance)
    assert result.success
    assert _metadata(result, "raw_pages")["layout"] == "word crops"
    assert pl.read_parquet(tmp_path / "art" / "assets" / "raw_pages.parquet").height == 0
    words = pl.read_parquet(tmp_path / "art" / "assets" / "raw_words.parquet")
    assert words.height == 5 * 4 * 6 and words["path"][0].startswith(str(root))
    assert not (tmp_path / "art" / "pages").exists()


def test_refusals(page_root: Path, tmp_path: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        # raw_words on a page root before raw_pages built its layout
        with pytest.raises(WrmilInputError, match="holds page scans, .*materialise raw_pages first"):
            _materialise([raw.raw_words], page_root, tmp_path / "art", instance)
        neither = tmp_path / "neither"
        (neither / "1").mkdir(parents=True)
        (neither / "1" / "a_0.txt").write_text("x")
        for assets in ([pages.raw_pages], [raw.raw_words]):
            with pytest.raises(WrmilInputError, match="holds neither word crops nor page scans"):
                _materialise(assets, neither, tmp_path / "art", instance)
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "page one.png").write_bytes((page_root / csafe_name(1, 1, "LND", 1)).read_bytes())
        with pytest.raises(WrmilInputError, match=r"page one\.png: the name does not follow wNNNN_sNN_pPROMPT_rN"):
            _materialise([pages.raw_pages], bad, tmp_path / "art", instance)


def test_ingest_job_includes_raw_pages() -> None:
    assert JOB_STAGES["ingest"][0].assets[:2] == ("raw_pages", "raw_words")
    assert all("raw_pages" in stages[0].assets for job, stages in JOB_STAGES.items() if "raw_words" in stages[0].assets)


def test_wrmil_run_ingests_a_page_root(page_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    from wrmil_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("WRMIL_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    assert main(["run", "--data-root", str(page_root), "--job", "ingest"]) == 0, capsys.readouterr()
    assert not (page_root / "naver_ocr.csv").exists()  # nothing generated into the user's pages
    words = pl.read_parquet(tmp_path / "artifacts" / "assets" / "raw_words.parquet")
    assert words["writer"].n_unique() == len(WRITERS)


# ---------------------------------------------------------------------------------------------
# wrmil score PAGE.png


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scoring_setup(tmp_path_factory)


def test_wrmil_score_on_a_page_draws_the_overlay(setup: dict[str, Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    from wrmil_assets.cli import main

    write_scoring_page(tmp_path / "questioned.png", foreign=FOREIGN)
    rc = main(["score", str(tmp_path / "questioned.png"), "--artifact-dir", str(setup["art"]), "--model", "distance"])
    out = capsys.readouterr().out
    assert rc == 0, out
    overlay = setup["art"] / "scores" / "questioned" / "page_overlay.png"
    assert f"wrmil score: overlay {overlay}" in out and overlay.is_file()
    assert "outlined passage: words" in out
    record = json.loads((overlay.parent / "page.json").read_text())
    assert record["passage"] is not None and record["overlay"] == str(overlay)


def test_wrmil_score_bad_page_exits_2(setup: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from wrmil_assets.cli import main

    (tmp_path / "torn.png").write_bytes(b"\x89PNG\r\n\x1a\n half a page")
    models = ["--embedding-model", str(setup["emb_dir"]), "--mil-model", str(setup["mil"]["distance"])]
    write_scoring_page(tmp_path / "page.png", foreign=FOREIGN)
    word = synth.render_word("Switzerland", synth.sample_writer_style(2, 0), np.random.default_rng(0))
    ImageOps.expand(word, 20, fill=255).save(tmp_path / "word.png")  # a word crop: no line of text
    cases = {"unreadable page": ([str(tmp_path / "torn.png")], "torn.png: not an image"),
             "word crop": ([str(tmp_path / "word.png")], "px holds 1 word, not a line of text"),
             "missing page": ([str(tmp_path / "nowhere.png")], "nowhere.png: no such file"),
             "order CSV with a page": ([str(tmp_path / "page.png"), "--order-csv", "o.csv"], "--order-csv orders")}
    for case, (args, needle) in cases.items():
        rc = main(["score", *args, *models, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 2, (case, err)
        assert err.startswith("wrmil score: error:") and needle in err and "Traceback" not in err, (case, err)
    assert not (tmp_path / "out" / "page_overlay.png").exists()
