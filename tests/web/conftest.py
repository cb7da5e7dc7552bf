"""One cluster, one web server and one browser for the web tests (they are few and share them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.cluster import Cluster, cluster
from tests.web.support import WebServer, chromium_path, web_server


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("web")) as running:
        yield running


@pytest.fixture(scope="session")
def web(services: Cluster) -> Iterator[WebServer]:
    with web_server(services) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Root (CI runs as root) cannot use Chromium's sandbox.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save a screenshot of each page they open: $CW_WEB_SCREENSHOTS, else a
    temporary directory."""
    chosen = os.environ.get("CW_WEB_SCREENSHOTS")
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    Path(chosen).mkdir(parents=True, exist_ok=True)
    return Path(chosen)
