"""Fixtures that build the bot's real parts: packs on disk, a database, a router.

The database is a SQLite file; tests marked ``both_databases`` run once on SQLite and once on a
real PostgreSQL server that the run starts (:mod:`tests.support.postgres`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.background import Background
from bot.catalog import PackCatalog
from bot.commands import default_commands
from bot.config import BotConfig, parse_config
from bot.engine.embedder import HashingEmbedder
from bot.engine.model import EchoChatModel
from bot.engine.packs import load_packs
from bot.engine.prompt import PromptBuilder, TokenCounter
from bot.engine.registry import PackRegistry
from bot.engine.responder import Responder
from bot.engine.retrieval import Retriever
from bot.engine.screenshots import ScreenshotMatcher
from bot.ledger import Ledger
from bot.messages import ChatKey, Reply
from bot.outbox import Outbox
from bot.router import Router
from bot.scheduler import Scheduler
from storage import Database, Repository
from tests.packs import ORLA_CAPTIONS, write_pack, write_xiaoman
from tests.support.postgres import BACKENDS, PostgresServer, PostgresUnavailable, start_postgres


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run (installed first when missing)."""
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot start here: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database of the run's server."""
    return postgres_server.create_database()


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    write_pack(tmp_path / "characters", screenshots=ORLA_CAPTIONS)
    write_xiaoman(tmp_path / "characters")
    return parse_config({"admins": {"superusers": ["onebot:1"]}}, source=tmp_path / "bot.toml")


@pytest.fixture
async def database(config: BotConfig, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    backend = getattr(request, "param", "sqlite")
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else config.database_url
    database = Database(url)
    await database.upgrade()
    yield database
    await database.aclose()


@pytest.fixture
def repository(database: Database) -> Repository:
    return Repository(database)


@pytest.fixture
def model() -> EchoChatModel:
    return EchoChatModel()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def announced(outbox: Outbox) -> list[tuple[ChatKey, Reply]]:
    """What the bot posts on its own to OneBot chats, recorded through the outbox."""
    posted: list[tuple[ChatKey, Reply]] = []

    async def post(key: ChatKey, reply: Reply) -> None:
        posted.append((key, reply))

    outbox.register("onebot", post)
    return posted


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    background = Background()
    yield background
    await background.aclose()


@pytest.fixture
async def catalog(config: BotConfig, outbox: Outbox, background: Background) -> PackCatalog:
    packs = PackRegistry(load_packs(config.characters_dir).packs)
    retriever = Retriever(HashingEmbedder(), config.data_dir, dense_weight=config.retrieval.dense_weight)
    screenshots = ScreenshotMatcher(
        retriever.embedder, min_similarity=config.images.min_similarity, min_overlap=config.images.min_overlap
    )
    catalog = PackCatalog(
        config.characters_dir,
        packs,
        retriever,
        screenshots,
        outbox=outbox,
        background=background,
        work_dir=config.data_dir / "characters",
    )
    await catalog.index_all()
    return catalog


@pytest.fixture
async def router(
    config: BotConfig, catalog: PackCatalog, repository: Repository, model: EchoChatModel, outbox: Outbox
) -> AsyncIterator[Router]:
    responder = Responder(
        config=config,
        retriever=catalog.retriever,
        prompts=PromptBuilder(config.prompt, TokenCounter.default()),
        model=model,
        screenshots=catalog.screenshots,
    )
    router = Router(
        config=config,
        catalog=catalog,
        repository=repository,
        responder=responder,
        commands=default_commands(),
        scheduler=Scheduler(),
        outbox=outbox,
        ledger=Ledger(repository.deliveries, process="test", resend_within_s=600),
    )
    yield router
    await router.pack_models.aclose()
    await router.speaker.aclose()
    await router.scheduler.aclose()
