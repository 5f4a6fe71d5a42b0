"""The running bot's parts, built from the config in the right order and closed together.

:meth:`Runtime.create` is what a host (the NoneBot plugin, a benchmark, a test) calls to get a
working :class:`~bot.router.Router`; nothing here knows about platforms.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from bot.background import Background
from bot.catalog import CatalogSync, PackCatalog
from bot.commands import default_commands
from bot.config import BotConfig
from bot.engine.backends import create_chat_model
from bot.engine.embedder import Embedder, create_embedder
from bot.engine.model import ChatModel
from bot.engine.packs import PackLoadReport, load_packs
from bot.engine.prompt import PromptBuilder, TokenCounter
from bot.engine.registry import PackRegistry
from bot.engine.responder import Responder
from bot.engine.retrieval import Retriever
from bot.engine.screenshots import ScreenshotMatcher
from bot.errors import ConfigError, PackError
from bot.health import StorageWatch
from bot.importers import ImportLimits
from bot.ledger import Ledger
from bot.memory import Summarizer
from bot.outbox import Outbox
from bot.router import Router
from bot.scheduler import Scheduler
from bot.sending import Senders
from bot.traces import forget_old_traces
from storage import Database, Repository
from storage.claims import CLAIM_WINDOW
from storage.db import process_name
from storage.models import utcnow

log = logging.getLogger(__name__)

STANDING_READ_AHEAD = 4
"""How many characters' standing prompts the model reads at start (the default character's first)."""


@dataclass(slots=True)
class Runtime:
    """Everything the bot runs on; close it with :meth:`aclose`."""

    config: BotConfig
    database: Database
    packs: PackRegistry
    pack_errors: list[PackError]
    embedder: Embedder
    retriever: Retriever
    model: ChatModel
    router: Router
    catalog: PackCatalog
    outbox: Outbox
    """Platforms register here how to post to their chats (progress of imports, notices)."""
    scheduler: Scheduler
    senders: Senders
    """Each bot account's paced send queue (QQ through OneBot uses them)."""
    ledger: Ledger
    """What the bot said and whether it was posted; posts what a stopped process left unposted."""
    background: Background = field(default_factory=Background)

    @staticmethod
    def load_packs(config: BotConfig) -> PackLoadReport:
        """Load ``[characters] dir``; raise :class:`ConfigError` when not one pack is usable."""
        report = load_packs(config.characters_dir)
        if not report.packs:
            problems = "; ".join(str(error) for error in report.errors) or "the folder has no packs"
            raise ConfigError(
                f"[characters] dir: no usable character pack in {config.characters_dir} ({problems})"
            )
        return report

    @classmethod
    async def create(
        cls, config: BotConfig, *, packs: PackLoadReport | None = None, model: ChatModel | None = None
    ) -> Runtime:
        """Open the database (migrating it), index the packs' scenes, and start the model.

        ``packs`` are the packs already loaded by the host (it loads them before starting the
        server, so a bad folder stops the start with one line); ``model`` replaces the configured
        chat model (benchmarks use an instant one).
        """
        report = packs if packs is not None else await asyncio.to_thread(cls.load_packs, config)
        registry = PackRegistry(report.packs)
        if config.characters.default not in registry:
            log.warning(
                "[characters] default %r is not among the loaded packs (%s); using %r",
                config.characters.default,
                ", ".join(pack.id for pack in registry),
                next(iter(registry)).id,
            )
        storage = config.storage
        database = Database(config.database_url, pool_size=storage.pool_size)
        try:
            database.hold_alone()
            await database.upgrade()
            await database.keep_open()
        except BaseException:
            await database.aclose()
            raise
        embedder = create_embedder(config.embedding, base_dir=config.base_dir)
        await asyncio.to_thread(embedder.load)
        retriever = Retriever(
            embedder,
            config.data_dir,
            dense_weight=config.retrieval.dense_weight,
            batch_size=config.embedding.batch_size,
        )
        screenshots = ScreenshotMatcher(
            embedder, min_similarity=config.images.min_similarity, min_overlap=config.images.min_overlap
        )
        chat_model = model or create_chat_model(config.llm, config.data_dir, config.base_dir)
        prompts = PromptBuilder(chat_model.budgets(config.prompt), TokenCounter.default())
        responder = Responder(
            config=config,
            retriever=retriever,
            prompts=prompts,
            model=chat_model,
            screenshots=screenshots,
        )
        background = Background()
        outbox = Outbox()
        catalog = PackCatalog(
            config.characters_dir,
            registry,
            retriever,
            screenshots,
            outbox=outbox,
            background=background,
            work_dir=config.data_dir / "characters",
            limits=ImportLimits(max_file_bytes=int(config.characters.max_import_mb * 1_000_000)),
            progress_every_s=config.characters.progress_every_s,
        )
        repository = Repository(database)
        scheduler = Scheduler(retry_min=config.scheduler.retry_min, max_retries=config.scheduler.max_retries)
        summarizer = Summarizer(config, repository, chat_model, registry, TokenCounter.default())
        scheduler.every("summaries", "rolling summaries", config.memory.summary_every_min, summarizer.run)
        if config.memory.retention_days:
            scheduler.every("retention", "deleting old summarised messages", 24 * 60, summarizer.clean_up)

        async def forget_traces() -> None:
            await forget_old_traces(repository, config.memory.trace_days)

        scheduler.every("traces", "deleting old reply traces", 24 * 60, forget_traces)

        ledger = Ledger(
            repository.deliveries, process=process_name(), resend_within_s=config.sending.resend_within_s
        )

        async def forget_claims() -> None:
            await repository.claims.forget(utcnow() - CLAIM_WINDOW)
            await ledger.expire()

        scheduler.every("claims", "forgetting old message claims and unposted replies", 60, forget_claims)
        watch = StorageWatch(database, outbox, config.admins.superusers)

        async def check_storage() -> None:
            await watch.check()

        scheduler.every("storage", "checking the database", storage.check_every_s / 60, check_storage)
        router = Router(
            config=config,
            catalog=catalog,
            repository=repository,
            responder=responder,
            commands=default_commands(),
            scheduler=scheduler,
            outbox=outbox,
            ledger=ledger,
            process=ledger.process,
            storage_watch=watch,
        )
        if not database.is_sqlite:
            sync = CatalogSync(catalog, repository, origin=router.process, interval_s=storage.sync_interval_s)
            await sync.start(background)
        greetings = await router.greetings.schedule_saved()
        runtime = cls(
            config,
            database,
            registry,
            report.errors,
            embedder,
            retriever,
            chat_model,
            router,
            catalog,
            outbox,
            scheduler,
            Senders(config.sending, config.data_dir, ledger),
            ledger,
            background,
        )
        scheduler.start()
        background.start(catalog.index_all(), "indexing the characters' scenes")
        default_first = sorted(registry, key=lambda pack: pack.id != config.characters.default)
        background.start(
            chat_model.warm_up(prompts.standing(default_first[:STANDING_READ_AHEAD])), "warming up the model"
        )
        log.info(
            "ready: %d character(s) [%s], model %s, database %s, %d daily greeting(s)",
            len(registry),
            ", ".join(pack.id for pack in registry),
            chat_model.name,
            "SQLite" if database.is_sqlite else "PostgreSQL, shared",
            greetings,
        )
        return runtime

    async def aclose(self) -> None:
        await self.router.waiting.aclose()
        await self.router.speaker.aclose()
        await self.router.governor.aclose()
        await self.senders.aclose()
        await self.scheduler.aclose()
        await self.background.aclose()
        await self.router.pack_models.aclose()
        await self.model.aclose()
        await self.database.aclose()
