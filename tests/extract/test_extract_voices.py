"""The character's voice lines cut out of the generated video: where they start, how long, how loud."""

from __future__ import annotations

import json
import logging
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from bot.cli import main
from bot.engine.packs import VoiceClip, load_pack
from bot.errors import ExtractError
from bot.extract import Episode, ExtractOptions, extract_pack, media
from bot.extract import voices as voices_module
from tests.extract.inputs import RATE, SRT_EN, TONES, decode_audio, dominant_hz, make_video, rms

ORLA_TONES = [TONES[1], TONES[4]]
"""The tones under Orla's two lines of ``SRT_EN`` (2.5-4.5 s and 15.2-17.8 s)."""
SOUND = 0.1
"""RMS above which a stretch of audio is sound, not silence (the tones are sines of amplitude 0.5)."""


def _voices(pack: Path) -> list[dict[str, str]]:
    return [json.loads(row) for row in (pack / "voices.jsonl").read_text("utf-8").splitlines()]


def _check_clip(clip: Path, tone: tuple[float, float, int]) -> None:
    """The clip is the line under ``tone``: as long as the line, loud from its first 50 ms, its pitch."""
    start, end, hz = tone
    samples = decode_audio(clip)
    assert len(samples) / RATE == pytest.approx(end - start, abs=0.15)
    assert rms(samples) > SOUND
    assert rms(samples[: RATE // 20]) > SOUND, "the clip starts where the line starts, not in the silence"
    assert dominant_hz(samples) == pytest.approx(hz, abs=5)


def test_the_characters_lines_become_loud_opus_clips(tmp_path: Path, video: Path, srt_en: Path) -> None:
    out = tmp_path / "orla"
    summary = extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, video)]))

    assert _voices(out) == [
        {"audio": "voices/0001.ogg", "text": "Then tie the boat twice.", "scene": "001"},
        {"audio": "voices/0002.ogg", "text": "Barnacle has taste.", "scene": "002"},
    ]
    assert sorted(path.name for path in (out / "voices").iterdir()) == ["0001.ogg", "0002.ogg"]
    for entry, tone in zip(_voices(out), ORLA_TONES, strict=True):
        data = (out / entry["audio"]).read_bytes()
        assert data.startswith(b"OggS")
        assert b"OpusHead" in data[:100]
        _check_clip(out / entry["audio"], tone)

    assert summary.voices is not None
    assert (summary.voices.written, summary.voices.skipped, summary.pack_voices) == (2, Counter(), 2)
    assert "  voices     2 (" in summary.render()
    assert "2 voice clips load as a pack" in summary.render()
    root = out.resolve()
    assert load_pack(out).voices == [
        VoiceClip(root / "voices" / "0001.ogg", "Then tie the boat twice.", "001"),
        VoiceClip(root / "voices" / "0002.ogg", "Barnacle has taste.", "002"),
    ]


def test_voice_format_mp3_writes_mp3_clips(
    tmp_path: Path, video: Path, srt_en: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "orla"
    args = ["extract", "--video", str(video), "--subtitles", str(srt_en), "--character", "Orla"]
    assert main([*args, "--out", str(out), "--voice-format", "mp3"]) == 0
    assert "  voices     2 (" in capsys.readouterr().out
    assert [entry["audio"] for entry in _voices(out)] == ["voices/0001.mp3", "voices/0002.mp3"]
    for entry, tone in zip(_voices(out), ORLA_TONES, strict=True):
        assert (out / entry["audio"]).read_bytes()[:3] in {b"ID3", b"\xff\xfb"}
        _check_clip(out / entry["audio"], tone)
    assert len(load_pack(out).voices) == 2


def test_no_voices_writes_none_and_a_rerun_drops_the_old_ones(
    tmp_path: Path, video: Path, srt_en: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "orla"
    args = ["extract", "--video", str(video), "--subtitles", str(srt_en), "--character", "Orla"]
    assert main([*args, "--out", str(out)]) == 0
    assert (out / "voices" / "0002.ogg").is_file()
    capsys.readouterr()

    assert main([*args, "--out", str(out), "--no-voices"]) == 0
    assert "  voices     off (--no-voices)\n" in capsys.readouterr().out
    assert not (out / "voices").exists()
    assert not (out / "voices.jsonl").exists()
    assert load_pack(out).voices == []
    assert len(load_pack(out).screenshots) == 2


def test_a_rerun_replaces_the_clips_it_listed(tmp_path: Path, video: Path, srt_en: Path) -> None:
    out = tmp_path / "orla"
    extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, video)]))
    (out / "voices" / "mine.ogg").write_bytes((out / "voices" / "0001.ogg").read_bytes())
    shorter = tmp_path / "short.srt"
    shorter.write_text(SRT_EN.split("\n4\n")[0], encoding="utf-8")

    extract_pack(ExtractOptions("Orla", out, episodes=[Episode(shorter, video)]))

    assert sorted(path.name for path in (out / "voices").iterdir()) == ["0001.ogg", "mine.ogg"]
    assert [clip.text for clip in load_pack(out).voices] == ["Then tie the boat twice."]


def test_a_video_without_sound_gives_a_pack_without_voices(
    tmp_path: Path, srt_en: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mute = make_video(tmp_path / "mute.mkv", sound=False)
    out = tmp_path / "orla"
    args = ["extract", "--video", str(mute), "--subtitles", str(srt_en), "--character", "Orla"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "  voices     0; no audio stream in mute.mkv: no voices from it\n" in printed
    assert not (out / "voices").exists()
    pack = load_pack(out)
    assert (len(pack.screenshots), pack.voices) == (2, [])


def test_lines_too_short_or_too_long_for_a_voice_are_skipped(tmp_path: Path, video: Path) -> None:
    subtitles = tmp_path / "odd.srt"
    subtitles.write_text(
        "1\n00:00:00,500 --> 00:00:00,700\nOrla: Oh.\n\n"
        "2\n00:00:01,000 --> 00:00:17,000\nOrla: A song that goes on and on.\n\n"
        "3\n00:00:17,200 --> 00:00:17,800\nOrla: Fine.\n",
        encoding="utf-8",
    )
    out = tmp_path / "orla"
    summary = extract_pack(ExtractOptions("Orla", out, episodes=[Episode(subtitles, video)]))

    assert _voices(out) == [{"audio": "voices/0003.ogg", "text": "Fine.", "scene": "001"}]
    _check_clip(out / "voices" / "0003.ogg", (17.2, 17.8, TONES[4][2]))
    assert summary.voices is not None
    assert summary.voices.skipped == Counter({"shorter than 0.3 s": 1, "longer than 15 s": 1})
    assert "voices     1 (" in summary.render()
    assert "skipped 1 shorter than 0.3 s, 1 longer than 15 s" in summary.render()
    assert summary.images == 3


FfmpegRunner = Callable[[Sequence[str], float, str], subprocess.CompletedProcess[str]]


def _failing_at(second: str, failure: str) -> FfmpegRunner:
    """An ffmpeg runner that fails the cut starting at ``second`` (after leaving half a file behind)."""
    real = media.run_ffmpeg

    def run(args: Sequence[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
        if args[args.index("-ss") + 1] != second:
            return real(args, timeout_s, what)
        Path(args[-1]).write_bytes(b"OggS half a clip")
        if failure == "timeout":
            raise ExtractError(f"{what}: ffmpeg took longer than {timeout_s:g} s")
        return subprocess.CompletedProcess(list(args), 1, "", "Invalid data found when processing input\n")

    return run


@pytest.mark.parametrize("failure", ["error", "timeout"])
def test_a_failed_cut_is_skipped_with_a_warning_and_the_pack_is_still_made(
    failure: str,
    tmp_path: Path,
    video: Path,
    srt_en: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(voices_module, "run_ffmpeg", _failing_at("15.200", failure))
    out = tmp_path / "orla"
    with caplog.at_level(logging.WARNING, logger="bot.extract.voices"):
        summary = extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, video)]))

    assert [entry["audio"] for entry in _voices(out)] == ["voices/0001.ogg"]
    assert sorted(path.name for path in (out / "voices").iterdir()) == ["0001.ogg"]
    assert summary.voices is not None
    assert (summary.voices.written, summary.voices.skipped) == (1, Counter({"failed": 1}))
    reason = "ffmpeg cannot cut the line (Invalid data" if failure == "error" else "ffmpeg took longer"
    assert f"skipped 1 failed; first failure: {video} at 0:00:15.200: {reason}" in summary.render()
    (warning,) = [record for record in caplog.records if record.name == "bot.extract.voices"]
    assert warning.levelname == "WARNING"
    assert warning.getMessage().startswith(f"voice line skipped: {video} at 0:00:15.200: ")
    assert len(load_pack(out).voices) == 1


def test_a_line_past_the_end_of_the_sound_is_skipped(tmp_path: Path, video: Path, srt_en: Path) -> None:
    """The sound stops at 10 s, the video at 20 s: Orla's line at 15.2 s has nothing to cut."""
    cut_short = tmp_path / "cut-short.mkv"
    subprocess.run(
        [media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(video),
         "-c:v", "copy", "-af", "atrim=0:10", "-c:a", "pcm_s16le", "-y", str(cut_short)],
        check=True,
        timeout=60,
    )  # fmt: skip
    out = tmp_path / "orla"
    summary = extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, cut_short)]))

    assert [entry["audio"] for entry in _voices(out)] == ["voices/0001.ogg"]
    assert sorted(path.name for path in (out / "voices").iterdir()) == ["0001.ogg"]
    assert "no sound there (is the audio track shorter than the video?)" in summary.render()
    assert summary.pack_screenshots == 2
