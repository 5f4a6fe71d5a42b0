"""The catalog changes the served characters while the bot runs, and indexes them in the background."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.background import Background
from bot.catalog import PackCatalog, safe_file_name
from bot.engine.embedder import FloatArray, HashingEmbedder
from bot.engine.registry import PackRegistry
from bot.engine.retrieval import Retriever
from bot.engine.screenshots import ScreenshotMatcher
from bot.errors import PackError
from bot.importers import PackDraft
from bot.messages import ChatKey, Reply
from bot.outbox import Outbox
from tests.importers.samples import WREN, v3, write_card_png, write_json

GROUP = ChatKey("onebot", "100")


async def test_an_imported_card_is_served_at_once_and_reported_when_indexed(
    catalog: PackCatalog, tmp_path: Path, announced: list[tuple[ChatKey, Reply]]
) -> None:
    card = write_card_png(tmp_path / "wren.png", {"ccv3": v3(WREN)})

    result = await catalog.install(card, report_to=GROUP)

    assert result.format == "card-png"
    assert catalog.packs.get("wren-calloway") is result.pack
    assert (catalog.directory / "wren-calloway" / "character.toml").is_file()
    await catalog.background.wait()
    assert announced == [
        (GROUP, Reply("Wren Calloway: indexed 2/2 scenes, ready.", quote=False)),
    ]
    hits = await catalog.retriever.search(result.pack, "whistle on deck", 1)
    assert "whistle" in hits[0].scene.text.casefold()


async def test_a_chat_upload_is_imported_from_its_bytes(catalog: PackCatalog, tmp_path: Path) -> None:
    data = write_json(tmp_path / "card.json", v3(WREN)).read_bytes()

    result = await catalog.install_upload("../../etc/Wren card.json", data, pack_id="wren")

    assert result.pack.id == "wren"
    assert not any((catalog.work_dir).glob("upload-*")), "the upload is deleted after the import"


async def test_a_bad_upload_leaves_nothing_behind(catalog: PackCatalog) -> None:
    before = sorted(path.name for path in catalog.directory.iterdir())

    with pytest.raises(PackError, match="invalid JSON"):
        await catalog.install_upload("card.json", b"{ not json", pack_id="broken")

    assert sorted(path.name for path in catalog.directory.iterdir()) == before
    assert "broken" not in catalog.packs


async def test_create_reload_and_remove(catalog: PackCatalog) -> None:
    draft = PackDraft(
        name="Juniper",
        language="en",
        scenes=[["Pip:「Is the bakery open?」", "Juniper:「Since four. The rye is still warm.」"]],
        persona="You are Juniper, who bakes bread before dawn in Skerrow village.",
    )
    created = await catalog.create(draft, "juniper")
    assert catalog.packs.get("juniper") is created

    toml = catalog.directory / "juniper" / "character.toml"
    toml.write_text(toml.read_text("utf-8").replace('greeting = ""', 'greeting = "Flour everywhere."'))
    reloaded = await catalog.reload("juniper")
    assert reloaded.settings.greeting == "Flour everywhere."
    assert reloaded.content_hash != created.content_hash
    assert catalog.packs.get("juniper") is reloaded

    await catalog.remove("juniper")
    assert "juniper" not in catalog.packs
    assert not (catalog.directory / "juniper").exists()
    assert catalog.retriever.get("juniper") is None


async def test_a_name_already_taken_is_refused_for_a_new_character(catalog: PackCatalog) -> None:
    draft = PackDraft(
        name="Orla", language="en", scenes=[["Orla:「Hello.」"]], persona="Another Orla entirely."
    )
    with pytest.raises(PackError, match="'Orla' already calls Orla Finch"):
        await catalog.create(draft, "orla2")


async def test_the_last_character_cannot_be_removed(catalog: PackCatalog) -> None:
    await catalog.remove("xiaoman")
    with pytest.raises(PackError, match="only character"):
        await catalog.remove("orla")
    assert "orla" in catalog.packs


async def test_export_writes_a_zip_and_a_card(catalog: PackCatalog) -> None:
    as_zip = await catalog.export("orla", "zip")
    as_card = await catalog.export("orla", "card")
    assert as_zip.name == "orla.zip"
    assert as_zip.path.read_bytes().startswith(b"PK")
    assert as_card.name == "orla.card.png"
    assert as_card.path.read_bytes().startswith(b"\x89PNG")


class SlowEmbedder(HashingEmbedder):
    """Embeds one batch per ``step`` release, so a test can watch the progress messages."""

    def __init__(self) -> None:
        super().__init__()
        self.step = threading.Semaphore(0)

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        self.step.acquire(timeout=10)
        return super().embed_passages(texts)


async def test_big_packs_report_progress_in_the_chat(tmp_path: Path) -> None:
    source = tmp_path / "transcript.txt"
    source.write_text(
        "\n\n".join(f"Pip: Question number {n}?\nMara: Answer number {n}." for n in range(6)), "utf-8"
    )
    embedder = SlowEmbedder()
    outbox = Outbox()
    posted: list[str] = []

    async def post(key: ChatKey, reply: Reply) -> None:
        posted.append(reply.text)
        embedder.step.release()

    outbox.register("onebot", post)
    background = Background()
    catalog = PackCatalog(
        tmp_path / "characters",
        PackRegistry(),
        Retriever(embedder, None, batch_size=2),
        ScreenshotMatcher(None, min_similarity=0.5, min_overlap=0.5),
        outbox=outbox,
        background=background,
        work_dir=tmp_path / "work",
        progress_every_s=0.05,
    )
    embedder.step.release()

    await catalog.install(source, pack_id="mara", report_to=GROUP)
    await background.wait()

    assert posted[0].startswith("Mara: indexing ")
    assert posted[-1] == "Mara: indexed 6/6 scenes, ready."
    counts = [int(text.split("indexing ")[1].split("/")[0]) for text in posted[:-1]]
    assert counts == sorted(counts)
    assert set(counts) <= {2, 4}


def test_upload_names_are_made_safe() -> None:
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\Users\\me\\Wren card.PNG") == "Wren_card.PNG"
    assert safe_file_name("..") == "upload"
