"""A real browser for the web console's tests: Debian's Chromium, driven by Selenium through Debian's
chromedriver of the same version.

:func:`chromium` installs both with apt when they are missing and the tests run as root (CI does);
where no browser can be had it skips the test with the reason. Selenium never downloads anything:
the driver's path is given and ``SE_OFFLINE`` keeps Selenium Manager off the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"
APT_PACKAGES = ("chromium", "chromium-driver")


def _found() -> tuple[str, str] | None:
    browser = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    driver = shutil.which(DRIVER)
    return (browser, driver) if browser and driver else None


def _apt_install() -> str | None:
    """Install Chromium and its driver with apt; why not, when it cannot."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "Chromium and chromium-driver are not installed, and apt-get cannot be run as root here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
    for attempt in (install, ["apt-get", "update", "-q"], install):
        done = subprocess.run(attempt, capture_output=True, text=True, env=env, timeout=600, check=False)
        if attempt is install and done.returncode == 0:
            return None
    return f"apt-get could not install {' '.join(APT_PACKAGES)}: {done.stderr.strip().splitlines()[-1:]}"


def browser_paths() -> tuple[str, str]:
    """Chromium's and chromedriver's paths, installed now if need be; skips the test otherwise."""
    found = _found()
    if found is None:
        why = _apt_install()
        found = _found()
        if found is None:
            pytest.skip(why or "Chromium was installed but cannot be found on PATH")
    return found


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chromium window of ``width`` × ``height`` CSS pixels."""
    browser, driver_path = browser_paths()
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver: WebDriver, name: str, folder: Path) -> Path:
    """Save what the window shows as ``folder/name.png`` (and under ``$CONSOLE_SHOTS`` when set, which
    is how the docs' pictures are made)."""
    target = folder / f"{name}.png"
    driver.save_screenshot(str(target))
    if shots := os.environ.get("CONSOLE_SHOTS"):
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, Path(shots) / f"console-{name}.png")
    return target
