"""The web console in a real browser (headless Chromium) against a real bot process: log in, talk in
the playground and see the reply with its screenshot, open the inspector and see the retrieved
scenes, and every page at phone width."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.importers.samples import WREN, card_png_bytes, v3
from tests.packs import ORLA_CAPTIONS, write_pack, write_xiaoman
from tests.support.bot_process import BotProcess, free_port, write_bot_toml
from tests.support.browser import chromium, shoot
from tests.support.openai_server import FakeOpenAIServer

TOKEN = "browser-test-console-token"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A bot process with the console on, answering with a captioned line; its base URL."""
    root = tmp_path_factory.mktemp("console")
    write_pack(root / "characters", screenshots=ORLA_CAPTIONS)
    write_xiaoman(root / "characters")
    port = free_port()
    with FakeOpenAIServer() as model:
        model.reply_text(f"Orla: {ORLA_CAPTIONS[1]}")
        config = write_bot_toml(
            root / "bot.toml",
            {"platforms": {"onebot": {"access_token": "t"}, "console": {"enabled": False}}},
            server={"host": "127.0.0.1", "port": port},
            llm={"base_url": model.base_url, "model": "fake-model"},
            embedding={"model": "hashing"},
            storage={"url": "sqlite+aiosqlite:///db/bot.sqlite3", "data_dir": "data"},
            characters={"dir": "characters", "default": "orla"},
        )
        process = BotProcess(config, cwd=root, extra_env={"BOT_CONSOLE_TOKEN": TOKEN}).start()
        try:
            process.wait_ready(port=port, timeout=90)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.stop()


def log_in(driver: WebDriver, bot: str) -> None:
    driver.get(f"{bot}/console/")
    assert "/console/login" in driver.current_url
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(expected_conditions.url_to_be(f"{bot}/console/"))


def fits(driver: WebDriver) -> bool:
    """Whether the page needs no sideways scrolling (wide tables scroll inside their card)."""
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_an_owner_logs_in_and_talks_to_a_character(bot: str, tmp_path: Path) -> None:
    with chromium() as driver:
        log_in(driver, bot)
        assert "Orla Finch" in driver.find_element(By.TAG_NAME, "main").text
        shoot(driver, "overview", tmp_path)

        driver.get(f"{bot}/console/play")
        driver.find_element(By.NAME, "text").send_keys("Your cat ate my fish again!")
        driver.find_element(By.CSS_SELECTOR, "form.say button[type=submit]").click()
        reply = WebDriverWait(driver, 20).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".line.character"))
        )
        assert ORLA_CAPTIONS[1] in reply.text
        screenshot = reply.find_element(By.TAG_NAME, "img")
        width = "return arguments[0].complete ? arguments[0].naturalWidth : 0"
        loaded = WebDriverWait(driver, 10).until(lambda d: d.execute_script(width, screenshot))
        assert loaded == 160, "the scene's screenshot is shown, loaded from the console"
        shoot(driver, "playground", tmp_path)

        reply.find_element(By.LINK_TEXT, "why?").click()
        WebDriverWait(driver, 10).until(expected_conditions.title_contains("Why Orla Finch said that"))
        main = driver.find_element(By.TAG_NAME, "main").text
        assert "Classic scenes retrieved" in main
        first_scene = driver.find_element(By.CSS_SELECTOR, "details summary")
        assert first_scene.text == "002", "the scene with the line the reply repeats ranks first"
        first_scene.click()
        assert ORLA_CAPTIONS[1] in driver.find_element(By.CSS_SELECTOR, "details pre").text
        shoot(driver, "inspector", tmp_path)


def indexed(driver: WebDriver) -> bool:
    """Whether the character page says its scene index is ready (reloading it while it is not; the
    page itself shows the progress in a frame that reloads on its own)."""
    if driver.find_elements(By.CSS_SELECTOR, ".index strong.ok"):
        return True
    driver.refresh()
    return False


def test_an_owner_imports_a_card_and_edits_a_scene(bot: str, tmp_path: Path) -> None:
    card = tmp_path / "wren.png"
    card.write_bytes(card_png_bytes(v3(WREN)))
    with chromium() as driver:
        log_in(driver, bot)
        driver.get(f"{bot}/console/characters")
        driver.find_element(By.CSS_SELECTOR, "input[type=file][name=file]").send_keys(str(card))
        driver.find_element(By.CSS_SELECTOR, "form[action$='/characters/import'] button[type=submit]").click()
        WebDriverWait(driver, 20).until(expected_conditions.url_contains("/console/characters/wren"))
        assert "Imported Wren Calloway" in driver.find_element(By.TAG_NAME, "main").text
        WebDriverWait(driver, 60).until(indexed)
        shoot(driver, "character", tmp_path)

        driver.get(f"{bot}/console/characters/orla")
        driver.find_element(By.CSS_SELECTOR, "details#scene-001 summary").click()
        scene = driver.find_element(By.CSS_SELECTOR, "details#scene-001 textarea")
        scene.clear()
        scene.send_keys("Pip: Orla, the storm is coming.\nno speaker on this line")
        problem = driver.find_element(By.CSS_SELECTOR, "details#scene-001 .live-check")
        WebDriverWait(driver, 10).until(lambda _d: problem.is_displayed())
        assert problem.text.startswith("scenes/001.txt:2: expected"), "the loader's words, as it is typed"
        scene.clear()
        scene.send_keys("Pip: Orla, the storm is coming.\nOrla: Then double the lines on the boat, Pip.")
        WebDriverWait(driver, 10).until(lambda _d: not problem.is_displayed())
        scene.find_element(By.XPATH, "ancestor::form//button[@value='save']").click()
        WebDriverWait(driver, 20).until(expected_conditions.url_contains("notice="))
        edited = driver.find_element(By.CSS_SELECTOR, "details#scene-001 textarea")
        assert "double the lines" in (edited.get_attribute("value") or "")

        driver.get(f"{bot}/console/play?chat=storm")
        driver.find_element(By.NAME, "text").send_keys("Orla, the storm is coming. What about the boat?")
        driver.find_element(By.CSS_SELECTOR, "form.say button[type=submit]").click()
        why = WebDriverWait(driver, 20).until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, ".line.character a.inspect"))
        )
        why.click()
        scenes = {
            summary.text: summary.find_element(By.XPATH, "..").get_attribute("textContent") or ""
            for summary in driver.find_elements(By.CSS_SELECTOR, "details summary")
        }
        assert "double the lines on the boat" in scenes["001"], "the reply was made from the edited scene"


def test_every_page_fits_a_phone(bot: str, tmp_path: Path) -> None:
    with chromium(390, 844) as driver:
        log_in(driver, bot)
        pages = (
            ("phone-overview", "/console/"),
            ("phone-playground", "/console/play"),
            ("phone-inspector", "/console/inspect/1"),
            ("phone-groups", "/console/groups"),
            ("phone-group", "/console/groups/console-web/playground"),
            ("phone-characters", "/console/characters"),
            ("phone-character", "/console/characters/orla"),
        )
        for name, path in pages:
            driver.get(f"{bot}{path}")
            assert fits(driver), path
            shoot(driver, name, tmp_path)
