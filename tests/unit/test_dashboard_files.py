"""The dashboard's files are package data: a non-editable install (the Docker image's
``pip install .``) must carry every file the page loads, and the app serves each."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from api.http.routes import ui

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "api" / "http" / "ui"


def test_every_dashboard_file_is_package_data_and_served() -> None:
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api.http"]
    files = sorted(p.name for p in UI.iterdir() if p.is_file())
    assert files == sorted(ui._MEDIA_TYPES)
    assert [f for f in files if not any(fnmatch.fnmatch(f"ui/{f}", g) for g in globs)] == []


def test_the_page_loads_only_files_the_app_serves_and_nothing_from_another_origin() -> None:
    page = (UI / "index.html").read_text()
    loaded = re.findall(r'(?:src|href)="(/[^"#]*)"', page)
    assert sorted(loaded) == ["/ui/app.css", "/ui/app.js"]
    assert "://" not in page.replace("http://www.w3.org", "")
    assert "://" not in (UI / "app.js").read_text().replace("http://www.w3.org/2000/svg", "")
