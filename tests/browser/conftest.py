"""What every browser test module shares: one chromium per module, on the module's own `stack`
fixture (each module boots a stack on ports, databases and a Redis DB of its own), and the folder
screenshots go to (artifacts/browser/, kept by CI)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.test_board import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from tests.e2e.stack import Stack


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
