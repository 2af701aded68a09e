"""The Dagster UI, used the way a person uses it: Debian's chromium driven by Playwright.

Starts ``dagster dev -w workspace.yaml`` on a free loopback port with a temporary
``DAGSTER_HOME`` and a tiny raw data root, then in the browser: opens the asset lineage and
finds every asset, finds every asset check on the assets' Checks tabs, materialises the
``ingest`` group (``raw_words`` -> ``writer_split``) with its "Materialize all" button, follows
the launched run to success and sees the checks pass. Screenshots land in
``data/ui_screenshots/`` (git-ignored). Every process it starts is stopped in ``finally``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.support.raw_root import make_raw_root
from tests.support.ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCATIONS_QUERY,
    REPO_ROOT,
    asset_checks_from_ui,
    graphql,
    list_runs,
    run_error_messages,
    start_dagster_dev,
    stop_process_group,
    wait_for_run,
    wait_for_server,
    write_dagster_home,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The graph's assets (the product contract); the test also requires every asset the code defines.
CORE_ASSETS = ("raw_words", "writer_split", "arcface_model", "word_embeddings", "instance_windows",
               "bags_by_difficulty", "mil_model", "difficulty_report")
SCREENSHOT_DIR = REPO_ROOT / "data" / "ui_screenshots"
UI_TIMEOUT_MS = 60_000  # first paint of a page can be slow on a busy 2-core machine
# The UI remembers a dismissed "Join the Dagster community" dialog under this localStorage key.
NUX_DISMISSED_JS = "try { window.localStorage.setItem('communityNux', '\"1\"'); } catch (e) {}"


def expected_graph() -> dict[str, set[str]]:
    """``asset name -> check names`` as the code defines them (``wrmil_assets.definitions.defs``)."""
    from wrmil_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    return {k.to_user_string(): {c.name for c in graph.get_check_keys_for_assets([k])}
            for k in graph.get_all_asset_keys()}


def see(locator: Locator, message: str) -> None:
    """Assert that ``locator`` becomes visible (patiently: a 2-core CI machine is slow)."""
    expect(locator, message).to_be_visible(timeout=UI_TIMEOUT_MS)


def visible_text(page: Page, text: str) -> Locator:
    """The first visible element whose whole text is ``text`` (the UI also renders hidden copies
    of names to measure them for truncation)."""
    return page.get_by_text(text, exact=True).filter(visible=True).first


def dismiss_tooltip(page: Page) -> None:
    """Point away from the graph and press Escape, so no tooltip covers the screenshots."""
    page.get_by_text("Global asset lineage", exact=True).hover()
    page.keyboard.press("Escape")
    try:
        page.get_by_role("tooltip").first.wait_for(state="detached", timeout=5_000)
    except PlaywrightTimeoutError:
        pass  # cosmetic only


def see_on_graph(page: Page, name: str) -> None:
    """Assert asset ``name`` is a node on the (already rendered) lineage graph.

    Zoomed out, the graph middle-truncates long names ("questioned_…_score"); a person reads
    those from the tooltip shown on hover, and so does this.
    """
    if visible_text(page, name).is_visible():
        return
    truncated = page.get_by_text(re.compile(r"^\S+…\S+$")).filter(visible=True)
    for node in truncated.all():
        head, _, tail = node.inner_text().partition("…")
        if not (name.startswith(head) and name.endswith(tail)):
            continue
        node.hover()
        tip = page.get_by_role("tooltip").filter(has_text=re.compile(rf"^{re.escape(name)}$"))
        try:
            expect(tip).to_be_attached(timeout=5_000)
            return
        except AssertionError:
            continue
        finally:
            dismiss_tooltip(page)
    see(visible_text(page, name), f"asset {name} not shown on the lineage graph")


def expand_all_groups(page: Page, probe: str = "writer_split", attempts: int = 6) -> None:
    """Lineage view: graph settings (gear) -> "Expand all groups", until asset ``probe`` shows.

    Retried: the graph may still be (re)laying out when the menu is first used, which can undo
    the expansion.
    """
    for _ in range(attempts):
        if visible_text(page, probe).is_visible():
            return
        gear = page.get_by_role("button", name="settings", exact=True)
        gear.click()
        item = page.get_by_role("menuitem", name=re.compile(r"(Expand|Collapse) all groups"))
        item.wait_for(timeout=UI_TIMEOUT_MS)
        if item.inner_text().startswith("Expand"):
            item.click()
        # The menu stays open (and ignores Escape): click outside it, on the page title.
        page.get_by_text("Global asset lineage", exact=True).click()
        item.wait_for(state="hidden", timeout=UI_TIMEOUT_MS)
        try:
            expect(visible_text(page, probe)).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"asset {probe} never showed on the lineage graph after 'Expand all groups'")


def check_status_row(page: Page, check: str) -> Locator:
    """On an asset's Checks tab: the list row of ``check`` (its name and its status text)."""
    return page.locator("span").filter(has=page.get_by_title(check, exact=True)).first


def test_ui_shows_graph_and_materialises_writer_split(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    t_start = time.monotonic()
    raw_root = make_raw_root(tmp_path, n_writers=10, n_reps=4, reps_per_session=2)
    env = {
        "DAGSTER_HOME": str(write_dagster_home(tmp_path / "dagster_home")),
        "WRMIL_DATA_ROOT": str(raw_root),
        "WRMIL_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "WRMIL_REPS_PER_SESSION": "2",
        "WRMIL_DEVICE": "cpu",
    }
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    failure_shot = SCREENSHOT_DIR / "failure.png"
    failure_shot.unlink(missing_ok=True)  # only the latest run's failure, if any
    shots: list[Path] = []
    server = start_dagster_dev(tmp_path, env)
    try:
        # Loaded in this process while the server starts in its own: what the UI must show.
        t0 = time.monotonic()
        expected = expected_graph()
        timings["load_defs_in_test_s"] = time.monotonic() - t0
        missing_core = set(CORE_ASSETS) - set(expected)
        assert not missing_core, f"wrmil_assets.definitions lacks assets {sorted(missing_core)}"
        assert expected["writer_split"], "writer_split defines no asset checks"

        timings["server_ready_s"] = wait_for_server(server, timeout_s=300)
        url = server.url
        entries = graphql(url, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
        assert len(entries) == 1, f"expected one code location from workspace.yaml, got {entries}"
        location = entries[0]["name"]
        # The webserver's own view of the graph must match the code (names and checks).
        assert asset_checks_from_ui(url) == expected, "UI GraphQL asset/check list differs from defs"

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page: Page | None = None
            try:
                context = browser.new_context(viewport={"width": 1920, "height": 1080})
                # A fresh instance greets a first visitor on localhost with a newsletter dialog
                # that can pop up over any page: mark it dismissed in this browser, as a returning
                # user would have it, and click "Skip" should it show anyway.
                context.add_init_script(NUX_DISMISSED_JS)
                page = context.new_page()
                page.set_default_timeout(UI_TIMEOUT_MS)
                page.add_locator_handler(page.get_by_role("button", name="Skip", exact=True),
                                         lambda skip: skip.click())

                # 1. Asset lineage: every asset node is on the graph.
                t0 = time.monotonic()
                page.goto(f"{url}/asset-groups", wait_until="domcontentloaded")
                see(page.get_by_text("Global asset lineage"), "the lineage page did not load")
                expand_all_groups(page)
                for name in sorted(expected):
                    see_on_graph(page, name)
                shots.append(SCREENSHOT_DIR / "asset_lineage_before.png")
                page.screenshot(path=shots[-1])

                # 2. Catalog: every asset is listed with a link to its page.
                page.goto(f"{url}/assets", wait_until="domcontentloaded")
                for name in sorted(expected):
                    link = page.locator(f'a[href="/assets/{name}"]').filter(visible=True).first
                    see(link, f"asset {name} not listed in the catalog")

                # 3. Each asset's Checks tab lists exactly its checks.
                for name, checks in sorted(expected.items()):
                    if not checks:
                        continue
                    page.goto(f"{url}/assets/{name}?view=checks", wait_until="domcontentloaded")
                    see(page.get_by_text(f"Checks ({len(checks)})", exact=True),
                        f"{name}: the Checks tab does not count {len(checks)} checks")
                    for check in sorted(checks):
                        see(check_status_row(page, check), f"{name}: check {check} not on the Checks tab")
                timings["browse_graph_and_checks_s"] = time.monotonic() - t0

                # 4. Materialise the ingest group (raw_words, writer_split) from its page.
                t0 = time.monotonic()
                page.goto(f"{url}/locations/{location}/asset-groups/ingest", wait_until="domcontentloaded")
                see(visible_text(page, "writer_split"), "writer_split not on the ingest group's graph")
                runs_before = {r["runId"] for r in list_runs(url)}
                # "Materialize all" (no ellipsis: no partitions to choose) launches straight away.
                page.get_by_role("button", name=re.compile(r"Materialize all$")).click()
                toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}"))
                see(toast, "no 'Launched run' notice after clicking Materialize all")
                page.get_by_role("link", name="View", exact=True).click()
                page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
                run_id = page.url.rstrip("/").split("/runs/")[1].split("?")[0]
                assert run_id not in runs_before, f"the View link points to an older run {run_id}"
                run = next(r for r in list_runs(url) if r["runId"] == run_id)
                selected = {"/".join(a["path"]) for a in run["assetSelection"] or []}
                assert {"raw_words", "writer_split"} <= selected, f"run {run_id} selects {selected}"

                # 5. The run page reports success; so does the instance.
                status = wait_for_run(url, run_id, timeout_s=300)
                assert status == "SUCCESS", (f"run {run_id} ended {status}: "
                                             f"{run_error_messages(url, run_id)}\n{server.log_tail()}")
                see(page.get_by_text("Success", exact=True).first, "the run page does not show Success")
                timings["materialise_ingest_s"] = time.monotonic() - t0
                shots.append(SCREENSHOT_DIR / "writer_split_run.png")
                page.screenshot(path=shots[-1])

                # 6. writer_split's checks have run and passed.
                page.goto(f"{url}/assets/writer_split?view=checks", wait_until="domcontentloaded")
                for check in sorted(expected["writer_split"]):
                    expect(check_status_row(page, check), f"writer_split check {check} did not succeed"
                           ).to_contain_text("Succeeded", timeout=UI_TIMEOUT_MS)
                shots.append(SCREENSHOT_DIR / "writer_split_checks.png")
                page.screenshot(path=shots[-1])

                # 7. The ingest group's graph (close enough to show node details): writer_split is
                #    materialised with every check passed.
                page.goto(f"{url}/locations/{location}/asset-groups/ingest", wait_until="domcontentloaded")
                n = len(expected["writer_split"])
                badge = page.locator('a[href*="/assets/writer_split?view=checks"]').filter(visible=True).first
                expect(badge, "ingest graph does not show writer_split's checks as passed"
                       ).to_have_text(re.compile(rf"{n}\s*/\s*{n}\s*Passed"), timeout=UI_TIMEOUT_MS)
                shots.append(SCREENSHOT_DIR / "writer_split_materialized.png")
                page.screenshot(path=shots[-1])

                # 8. The whole lineage after the run (the main screenshot).
                page.goto(f"{url}/asset-groups", wait_until="domcontentloaded")
                expand_all_groups(page)
                for name in sorted(expected):
                    see_on_graph(page, name)
                shots.append(SCREENSHOT_DIR / "asset_lineage.png")
                page.screenshot(path=shots[-1])
            except BaseException:
                # What the browser showed when the test gave up, for the assertion's reader.
                if page is not None:
                    page.screenshot(path=failure_shot)
                    print(f"failure screenshot: {failure_shot} (at {page.url})")
                raise
            finally:
                browser.close()
    finally:
        t0 = time.monotonic()
        stop_process_group(server)
        timings["stop_server_s"] = time.monotonic() - t0
    timings["total_s"] = time.monotonic() - t_start
    for p in shots:
        print(f"screenshot: {p}")
    print("timings: " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
