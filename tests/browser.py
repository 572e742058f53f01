"""Headless Chromium for the page tests (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them).

Bokeh draws its widgets inside shadow DOM, where ``find_element`` does not look: :func:`text_of`
searches through every shadow root for an element id and returns its text, as a reader sees it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT

ARTIFACTS = ROOT / "out" / "test-artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1300",
)

DEEP_FIND = """
function find(root, id) {
  const hit = root.getElementById ? root.getElementById(id) : root.querySelector('#' + id);
  if (hit) return hit;
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) { const f = find(el.shadowRoot, id); if (f) return f; }
  }
  return null;
}
const el = find(document, arguments[0]);
return el ? el.innerText : null;
"""


def chromium():
    """A fresh headless Chromium with its own profile folder; console messages are logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not Path(driver_path).exists():
        pytest.fail("chromium-driver is not installed: apt-get install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='labkit-chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def text_of(driver, element_id: str) -> str | None:
    return driver.execute_script(DEEP_FIND, element_id)


def wait_for(predicate, what: str, timeout: float = 30, interval: float = 0.2, on_failure=None):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    detail = f"; {on_failure()}" if on_failure else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r}){detail}")


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
