"""The dashboard (GET /ui) in a real headless Chromium, driven by selenium, against a
real `bulkactions serve`: log in with a key, watch an import reach COMPLETED with its
exact counts, open its page (errors by code, results CSVs), take screenshots."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.conftest import require_server
from tests.e2e.http_server import ApiServer, create_account, runtime_in_bursts
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROWS = 10_000


def _found(*candidates: str | None) -> str | None:
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _chromium() -> tuple[str, str] | None:
    """Debian's chromium and chromedriver (.ci/run installs them), or what a host has."""
    browser = _found(
        os.environ.get("BULK_TEST_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("google-chrome"),
    )
    hosted = os.environ.get("CHROMEWEBDRIVER")  # the hosted runner's driver folder
    driver = _found(
        os.environ.get("BULK_TEST_CHROMEDRIVER"),
        "/usr/bin/chromedriver",
        shutil.which("chromedriver"),
        hosted and str(Path(hosted) / "chromedriver"),
    )
    return (browser, driver) if browser and driver else None


class Page:
    """The browser on the dashboard; a failed wait or check names a screenshot of it."""

    def __init__(self, driver: Any, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def why(self, what: str) -> str:
        console = [entry["message"] for entry in self.driver.get_log("browser")]
        return f"{what}; screenshot: {self.screenshot('failure')}; browser console: {console}"

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        try:
            return wait_for(condition, timeout, what, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(self.why(str(exc))) from None

    def one(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.driver.find_elements(By.CSS_SELECTOR, selector)
        return found

    def text(self, selector: str) -> str:
        elements = self.all(selector)
        return str(elements[0].text) if elements else ""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("dashboard"), workers=1).start()
    yield api
    api.stop()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    found = _chromium()
    if found is None:
        require_server("chromium", "no chromium and chromedriver: apt-get install -y chromium chromium-driver")
    assert found is not None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = found
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1400"):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield Page(driver, tmp_path)
    finally:
        driver.quit()


def number(text: str) -> int:
    return int(text.replace(",", ""))


def failed_codes(client: httpx.Client, action_id: str) -> Counter[str]:
    """Failed records per error code, from the logs endpoint (what the page should show)."""
    codes: Counter[str] = Counter()
    cursor = None
    while True:
        params = {"outcome": "failed", "limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/v1/bulk-actions/{action_id}/logs", params=params).json()
        for line in page["items"]:
            codes.update({error["code"] for error in line["errors"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return codes


def test_an_operator_logs_in_and_watches_an_import_complete_with_exact_counts(server: ApiServer, page: Page) -> None:
    key = create_account(server.data_dir, "operator")
    page.driver.get(server.base_url + "/ui")
    login = page.wait(lambda: page.one("input[name=api_key]"), "the login form")
    login.send_keys("bap_not_a_key\n")
    page.wait(lambda: page.text("#login-error") == "Unknown API key.", "a refused key to be said so")
    login.clear()
    login.send_keys(key + "\n")
    page.wait(lambda: page.one("#list").is_displayed() and page.one("#empty").is_displayed(), "the empty list")
    assert page.driver.execute_script("return sessionStorage.getItem('bulkactions.api_key')") == key
    assert page.driver.execute_script("return localStorage.length") == 0

    with server.client(key) as client, runtime_in_bursts(server):
        path = server.data_dir / "contacts.csv"
        expected = write_contacts_csv(path, ROWS)
        form = {"entity": "contact", "action": "insert", "chunk_size": "100"}
        sent = client.post("/v1/bulk-actions", data=form, files={"file": (path.name, path.read_bytes(), "text/csv")})
        assert sent.status_code == 202, sent.text
        action_id = sent.json()["id"]

        row = f'#actions tr[data-id="{action_id}"]'
        seen: list[tuple[str, str]] = []

        def completed() -> bool:
            state = (page.text(f'{row} [data-field="status"]'), page.text(f'{row} [data-field="succeeded"]'))
            if state[0] and state not in seen:
                seen.append(state)
            return state[0] == "COMPLETED"

        page.wait(completed, f"action {action_id} to show COMPLETED", timeout=120)
        shown = {f: page.text(f'{row} [data-field="{f}"]') for f in ("succeeded", "failed", "skipped", "total")}
        list_shot = page.screenshot("list")
        assert {f: number(v) for f, v in shown.items()} == {
            "succeeded": expected.valid,
            "failed": expected.invalid,
            "skipped": expected.duplicates,
            "total": ROWS,
        }, f"screenshot: {list_shot}"
        running = [s for s in seen if s[0] != "COMPLETED" and 0 < number(s[1] or "0") < expected.valid]
        assert running, f"no count seen while it ran: {seen}; screenshot: {list_shot}"  # it updated live
        assert page.one(f"{row} .bar > div").get_attribute("style") == "width: 100%;"

        page.one(f'{row} [data-field="id"] a').click()
        page.wait(lambda: page.one("#detail").is_displayed(), "the action's page")
        page.wait(lambda: page.all("#errors tbody tr"), "the errors by code")
        full = page.one("#detail .bar").size["width"]
        page.wait(lambda: page.one("#d-bar").size["width"] == full, "the progress bar to be full")
        action_shot = page.screenshot("action")
        counts = {dd.get_attribute("data-field"): dd.text for dd in page.all("#d-counts dd")}
        assert number(counts["succeeded"]) == expected.valid, f"screenshot: {action_shot}"
        assert number(counts["failed"]) == expected.invalid and number(counts["skipped"]) == expected.duplicates
        groups = {
            tr.get_attribute("data-code"): number(tr.find_elements("css selector", "td")[1].text)
            for tr in page.all("#errors tbody tr")
        }
        assert groups == dict(failed_codes(client, action_id)), f"screenshot: {action_shot}"
        assert all(tr.find_elements("css selector", ".examples li") for tr in page.all("#errors tbody tr"))
        assert len(page.all("#chart polyline")) == 4, f"screenshot: {action_shot}"

        links = {a.get_attribute("data-outcome"): a for a in page.all("#results a")}
        assert sorted(links) == ["failed", "skipped", "succeeded"]
        for outcome, link in links.items():
            assert link.get_attribute("href").endswith(f"/v1/bulk-actions/{action_id}/results/{outcome}.csv")
            assert key not in link.get_attribute("href")
        links["failed"].click()
        saved = page.shots / "downloads" / f"{action_id}-failed.csv"
        page.wait(lambda: saved.exists() and saved.stat().st_size > 0, "the failed rows CSV to download")
        rows = list(csv.DictReader(io.StringIO(saved.read_text())))
        assert len(rows) == expected.invalid and {r["outcome"] for r in rows} == {"failed"}
        assert key not in page.driver.current_url
