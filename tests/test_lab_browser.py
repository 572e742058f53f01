"""`make lab` seen in a real browser: JupyterLab opens, lists the lessons, and lesson 00 runs from the page.

`make lab` is `labkit up` and then `jupyter lab` from the top of the checkout. The stack comes from
the session fixture (the test ports); this starts the same `jupyter lab` on a free port without a
token and drives it with headless Chromium. Lesson 00 runs from a copy under out/ (gitignored),
so JupyterLab's autosave never writes outputs into the committed notebook.
"""

import os
import shutil
import subprocess
import sys
import time

import browser
import nbformat
import pytest
from conftest import ROOT, free_port

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def lab_url(stack, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("lab") / "jupyter.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the kernels import this checkout's labkit
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--allow-root",
        f"--ServerApp.root_dir={ROOT}",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        browser.wait_for(
            lambda: f":{port}/" in log.read_text() or process.poll() is not None, "JupyterLab to start", timeout=90
        )
        assert process.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def listed_names(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.jp-DirListing-itemText')].map(e => e.innerText.trim())"
    )


def test_jupyterlab_lists_the_lessons(lab_url):
    driver = browser.chromium()
    try:
        driver.get(f"{lab_url}/lab/tree/notebooks")
        lessons = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
        browser.wait_for(
            lambda: set(lessons) <= set(listed_names(driver)),
            "the lessons in the file browser",
            timeout=90,
            on_failure=lambda: listed_names(driver),
        )
        browser.screenshot(driver, "jupyterlab-lessons")
    finally:
        driver.quit()


def cell_states(driver) -> list[str]:
    """Each code cell's prompt as the page shows it: '[3]:', '[*]:' while running, '[ ]:' before."""
    return driver.execute_script(
        "return [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.innerText.trim())"
    )


def error_outputs(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
        ".map(e => e.innerText).filter(t => t.includes('Traceback') || t.includes('Error'))"
    )


def click_menu(driver, css_class: str, label: str) -> None:
    """Click the menu entry whose text is ``label`` (JupyterLab's menus are plain DOM)."""

    def find():
        return next((e for e in driver.find_elements("css selector", f".{css_class}") if e.text.strip() == label), None)

    browser.wait_for(find, f"the menu entry {label!r}", timeout=30).click()


@pytest.mark.spark
def test_lesson_00_runs_to_its_last_cell_from_the_browser(lab_url):
    copy = ROOT / "out" / "test-artifacts" / "lab" / "00_setup.ipynb"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "notebooks" / "00_setup.ipynb", copy)
    driver = browser.chromium()
    try:
        driver.get(f"{lab_url}/lab/tree/{copy.relative_to(ROOT)}")
        browser.wait_for(
            lambda: driver.execute_script(
                "const k = document.querySelector('.jp-Notebook-ExecutionIndicator, .jp-KernelStatus');"
                "return document.querySelectorAll('.jp-CodeCell').length > 0 && k !== null"
            ),
            "the notebook to open",
            timeout=90,
        )
        time.sleep(3)  # the kernel to start
        # Run > Run All Cells, from the menu as a learner would.
        click_menu(driver, "lm-MenuBar-itemLabel", "Run")
        click_menu(driver, "lm-Menu-itemLabel", "Run All Cells")
        # JupyterLab draws only the cells in view, and Run All stops at the first error: the lesson ran
        # to its end without one exactly when its last cell shows execution count N, N its code cells.
        n = sum(c.cell_type == "code" for c in nbformat.read(copy, 4).cells)

        def finished():
            states = cell_states(driver)
            return (states and states[-1] == f"[{n}]:") or error_outputs(driver)

        browser.wait_for(
            finished,
            "every cell of lesson 00 to run",
            timeout=600,
            interval=2,
            on_failure=lambda: (cell_states(driver), error_outputs(driver)),
        )
        browser.screenshot(driver, "jupyterlab-lesson-00")
        assert error_outputs(driver) == []
        assert cell_states(driver)[-1] == f"[{n}]:"
    finally:
        driver.quit()
