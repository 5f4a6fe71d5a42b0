from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.engine.packs import VoiceClip, load_pack, load_packs, parse_scene
from bot.engine.registry import PackRegistry
from bot.errors import PackError
from tests.packs import write_pack, write_xiaoman

SHIPPED = Path(__file__).parents[2] / "characters"


def test_scene_lines_in_both_forms(tmp_path: Path) -> None:
    scene = parse_scene(tmp_path / "001.txt", "旁白:「夜深了」\n\nOrla: Aye.\n苏小满：「来了」\n")
    assert [(line.speaker, line.text) for line in scene.lines] == [
        ("旁白", "夜深了"),
        ("Orla", "Aye."),
        ("苏小满", "来了"),
    ]
    assert scene.text == "旁白:「夜深了」\nOrla:「Aye.」\n苏小满:「来了」"


def test_a_line_without_speaker_is_reported_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        parse_scene(tmp_path / "002.txt", "Orla: Aye.\njust some words\n")
    assert caught.value.line == 2
    assert str(caught.value).startswith(f"{tmp_path / '002.txt'}:2: expected 'Speaker:")


def test_bad_toml_key_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = write_pack(tmp_path, extra_toml="colour = 'blue'\n")
    with pytest.raises(PackError, match=r"character\.toml:\d+: colour: unknown key"):
        load_pack(folder)


def test_missing_persona(tmp_path: Path) -> None:
    folder = write_pack(tmp_path)
    (folder / "character.toml").write_text('name = "Orla"\n', encoding="utf-8")
    with pytest.raises(PackError, match="persona: Field required"):
        load_pack(folder)


def test_images_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    folder = write_pack(tmp_path)
    (folder / "images").mkdir()
    (folder / "images" / "0001.jpg").write_bytes(b"\xff\xd8\xff")
    entries = [{"image": "images/0001.jpg", "text": "Aye."}, {"image": "images/0002.jpg", "text": "No."}]
    (folder / "images.jsonl").write_text("\n".join(json.dumps(e) for e in entries), encoding="utf-8")
    with pytest.raises(PackError, match=r"images\.jsonl:2: image 'images/0002\.jpg' does not exist"):
        load_pack(folder)
    (folder / "images.jsonl").write_text('{"image": "images/0001.jpg", "text": "Aye."}\n{oops\n')
    with pytest.raises(PackError, match=r"images\.jsonl:2: invalid JSON"):
        load_pack(folder)


def _with_voices(tmp_path: Path, *rows: str) -> Path:
    """A pack with two recorded lines in ``voices/`` and ``rows`` as its ``voices.jsonl``."""
    folder = write_pack(tmp_path)
    (folder / "voices").mkdir()
    for name in ("0001.ogg", "0002.mp3"):
        (folder / "voices" / name).write_bytes(b"OggS")
    (folder / "voices.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_voices_jsonl_lists_the_characters_recorded_lines(tmp_path: Path) -> None:
    folder = _with_voices(
        tmp_path,
        '{"audio": "voices/0001.ogg", "text": "Then tie the boat twice, Pip.", "scene": "001"}',
        "",
        '{"audio": "voices/0002.mp3", "text": " Aye. "}',
    )
    pack = load_pack(folder)
    root = folder.resolve()
    assert pack.voices == [
        VoiceClip(root / "voices" / "0001.ogg", "Then tie the boat twice, Pip.", "001"),
        VoiceClip(root / "voices" / "0002.mp3", "Aye.", ""),
    ]
    before = pack.content_hash
    (folder / "voices.jsonl").write_text('{"audio": "voices/0002.mp3", "text": "No."}\n', encoding="utf-8")
    assert load_pack(folder).content_hash != before


GOOD_VOICE = '{"audio": "voices/0001.ogg", "text": "Aye."}'


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('{"audio": "voices/0001.ogg", "text": "Aye."', "invalid JSON at column"),
        ('["voices/0001.ogg", "Aye."]', 'each line must be an object with "audio" and "text"'),
        ('{"text": "Aye."}', 'each line must be an object with "audio" and "text"'),
        ('{"audio": "voices/0009.ogg", "text": "Aye."}', "audio 'voices/0009.ogg' does not exist"),
        ('{"audio": "../outside.ogg", "text": "Aye."}', "audio '../outside.ogg' lies outside the pack"),
        (
            '{"audio": "voices/0001.ogg", "text": "  "}',
            '"text" must be the non-empty line spoken in the clip',
        ),
        ('{"audio": "voices/0001.ogg"}', '"text" must be the non-empty line spoken in the clip'),
        ('{"audio": "scenes/001.txt", "text": "Aye."}', "audio 'scenes/001.txt' must be a .m4a, .mp3, .ogg"),
        ('{"audio": "voices/0001.ogg", "text": "Aye.", "scene": 1}', '"scene" must be the id of a scene'),
        (
            '{"audio": "voices/0001.ogg", "text": "Aye.", "scene": "scenes/001.txt"}',
            "scene 'scenes/001.txt' is not a scene of the pack: give a scene file's name without .txt",
        ),
    ],
    ids=[
        "bad JSON",
        "not an object",
        "no audio",
        "missing file",
        "outside the pack",
        "blank text",
        "no text",
        "wrong suffix",
        "scene not a string",
        "unknown scene",
    ],
)
def test_a_bad_voices_jsonl_line_is_reported_with_file_and_line(
    tmp_path: Path, row: str, problem: str
) -> None:
    (tmp_path / "outside.ogg").write_bytes(b"OggS")
    folder = _with_voices(tmp_path, GOOD_VOICE, row)
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    assert (caught.value.path, caught.value.line) == (folder / "voices.jsonl", 2)
    assert caught.value.reason.startswith(problem)


def test_a_voices_jsonl_that_is_not_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = _with_voices(tmp_path, GOOD_VOICE)
    (folder / "voices.jsonl").write_bytes(
        GOOD_VOICE.encode() + '\n{"audio": "voices/0001.ogg", "text": "caf\xe9"}'.encode("latin-1")
    )
    with pytest.raises(PackError, match=r"voices\.jsonl:2: not UTF-8 text"):
        load_pack(folder)


def test_non_utf8_scene(tmp_path: Path) -> None:
    folder = write_pack(tmp_path)
    (folder / "scenes" / "009.txt").write_bytes("Orla: ok\nOrla: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PackError, match=r"009\.txt:2: not UTF-8"):
        load_pack(folder)


def test_a_broken_pack_does_not_stop_the_others(tmp_path: Path) -> None:
    write_pack(tmp_path)
    write_xiaoman(tmp_path)
    broken = write_pack(tmp_path, "broken")
    (broken / "scenes" / "001.txt").write_text("no speaker here\n", encoding="utf-8")
    report = load_packs(tmp_path)
    assert sorted(pack.id for pack in report.packs) == ["orla", "xiaoman"]
    assert len(report.errors) == 1
    assert report.errors[0].path == broken / "scenes" / "001.txt"


def test_content_hash_changes_with_the_scenes(tmp_path: Path) -> None:
    folder = write_pack(tmp_path)
    before = load_pack(folder).content_hash
    (folder / "scenes" / "004.txt").write_text("Orla: New scene.\n", encoding="utf-8")
    assert load_pack(folder).content_hash != before


@pytest.fixture
def registry(tmp_path: Path) -> PackRegistry:
    write_pack(tmp_path)
    write_xiaoman(tmp_path)
    write_pack(tmp_path, "orlando", name="Orlando Reed", aliases=("Orlando",))
    return PackRegistry(load_packs(tmp_path).packs)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("orla", "orla"),
        ("Orla Finch", "orla"),
        ("keeper", "orla"),
        ("小满", "xiaoman"),
        ("xiaomn", "xiaoman"),
    ],
)
def test_match_finds_by_id_name_alias_or_misspelling(
    registry: PackRegistry, query: str, expected: str
) -> None:
    match = registry.match(query)
    assert match.pack is not None
    assert match.pack.id == expected


def test_match_reports_ambiguity_and_unknown(registry: PackRegistry) -> None:
    ambiguous = registry.match("orl")
    assert ambiguous.pack is None
    assert sorted(pack.id for pack in ambiguous.candidates) == ["orla", "orlando"]
    unknown = registry.match("zzzz")
    assert unknown.pack is None
    assert unknown.candidates == ()


@pytest.mark.parametrize(
    ("text", "expected", "rest"),
    [
        ("Orla, is the lamp lit?", "orla", "is the lamp lit?"),
        ("keeper: hello", "orla", "hello"),
        ("小满，来壶茶", "xiaoman", "来壶茶"),
        ("满掌柜在吗", "xiaoman", "在吗"),
        ("Orlando, hi", "orlando", "hi"),
    ],
)
def test_called_at_start(registry: PackRegistry, text: str, expected: str, rest: str) -> None:
    called = registry.called_at_start(text)
    assert called is not None
    assert (called[0].id, called[1]) == (expected, rest)


@pytest.mark.parametrize("text", ["hello everyone", "Orlaaa hi", "I think Orla is nice"])
def test_not_a_call(registry: PackRegistry, text: str) -> None:
    assert registry.called_at_start(text) is None


def test_shipped_packs_are_valid_and_big_enough() -> None:
    report = load_packs(SHIPPED)
    assert report.errors == []
    languages = {pack.settings.language for pack in report.packs}
    assert {"en", "zh"} <= languages
    for pack in report.packs:
        assert len(pack.scenes) >= 40, pack.id
        assert len(pack.screenshots) >= 5, pack.id
        assert pack.aliases
        assert pack.settings.greeting
        for lines in (pack.settings.deflection, pack.settings.slow_down, pack.settings.spent):
            assert len(set(lines)) >= 3, f"{pack.id}: a chat never hears the same set line twice in a row"


def test_set_lines_are_one_string_or_a_list(tmp_path: Path) -> None:
    one = write_pack(tmp_path / "one", extra_toml='deflection = "Strange talk."\nspent = ""\n')
    several = write_pack(
        tmp_path / "several",
        extra_toml='deflection = ["Strange talk.", "Ask me about the sea."]\n'
        'slow_down = ["Easy now.", " "]\n',
    )
    assert load_pack(one).settings.deflection == ["Strange talk."]
    assert load_pack(one).settings.spent == [], "an empty line is no line"
    settings = load_pack(several).settings
    assert (settings.deflection, settings.slow_down, settings.spent) == (
        ["Strange talk.", "Ask me about the sea."],
        ["Easy now."],
        [],
    )


def test_a_set_line_that_is_not_text_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = write_pack(tmp_path, extra_toml="slow_down = [1, 2]\n")
    with pytest.raises(PackError, match=r"character\.toml:\d+: slow_down\.0: Input should be a valid string"):
        load_pack(folder)


@pytest.mark.parametrize(
    ("avatar", "problem"),
    [
        ("images/none.png", r"character\.toml:\d+: avatar 'images/none.png' does not exist"),
        ("../outside.png", r"character\.toml:\d+: avatar '../outside.png' lies outside the pack"),
        ("scenes/001.txt", r"character\.toml:\d+: avatar 'scenes/001.txt' must be a \.gif, \.jpeg"),
    ],
)
def test_a_bad_avatar_is_reported_with_its_line(tmp_path: Path, avatar: str, problem: str) -> None:
    (tmp_path / "outside.png").write_bytes(b"")
    folder = write_pack(tmp_path, extra_toml=f'avatar = "{avatar}"\n')
    with pytest.raises(PackError, match=problem):
        load_pack(folder)


def test_an_avatar_is_a_pack_file_or_a_url(tmp_path: Path) -> None:
    folder = write_pack(tmp_path, extra_toml='avatar = "avatar.png"\n')
    (folder / "avatar.png").write_bytes(b"\x89PNG")
    pack = load_pack(folder)
    assert (pack.avatar_path, pack.avatar_url) == (folder / "avatar.png", None)
    linked = write_pack(tmp_path, "linked", extra_toml='avatar = "https://example.org/orla.png"\n')
    assert load_pack(linked).avatar_url == "https://example.org/orla.png"
    assert load_pack(linked).avatar_path is None


@pytest.mark.parametrize(
    ("text", "ids", "rest"),
    [
        ("Orla, 小满, what do you think?", ["orla", "xiaoman"], "what do you think?"),
        ("@Orla @小满 hi", ["orla", "xiaoman"], "hi"),
        ("Orla and 小满: tea?", ["orla", "xiaoman"], "tea?"),
        ("小满和Orla，吃饭了吗", ["xiaoman", "orla"], "吃饭了吗"),
        ("what do you say, @小满?", ["xiaoman"], "what do you say?"),
        ("Orla, Orla, hello", ["orla"], "hello"),
        ("mail me@Orla.example", [], "mail me@Orla.example"),
        ("ask @Orlando", ["orlando"], "ask"),
        ("hello there", [], "hello there"),
    ],
)
def test_every_character_a_message_calls(
    registry: PackRegistry, text: str, ids: list[str], rest: str
) -> None:
    packs, left = registry.called(text, limit=3)
    assert [pack.id for pack in packs] == ids
    assert left == rest
