"""What the offline voices cost: load time, synthesis time, memory, and what the ``voice`` extra installs.

Each engine runs in a fresh Python (so one engine's memory does not hide in another's), on one thread:
Kokoro-82M speaking Japanese, espeak-ng speaking Mandarin and English. Kokoro runs twice on the same
model folder: the first start joins its 92 MB of weights, the second only loads them. Synthesis is
timed per sentence after one warm-up sentence; the table shows the median seconds of computing per
second of audio. Memory is the peak resident size added over a bare Python that imported numpy, and
the part of it the engine adds once the bot's own modules are imported (a running bot has those)::

    .venv/bin/python scripts/bench_voice.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.voice.speech import SpeechEngine

ROOT = Path(__file__).resolve().parents[1]

SENTENCES = {
    "ja": [
        "こんにちは、今日はいい天気ですね。",
        "駅の前の喫茶店で待っています。",
        "昨日の夜は遅くまで本を読んでいました。",
        "この町には古い灯台がひとつあります。",
        "明日の朝、一緒に市場へ行きませんか？",
        "雨が降りそうなので、傘を持っていきましょう。",
    ],
    "zh": [
        "你好，今天天气真不错。",
        "我在车站前面的咖啡馆等你。",
        "昨天晚上我看书看到很晚。",
        "这个小镇上有一座古老的灯塔。",
        "明天早上我们一起去市场好吗？",
        "好像要下雨了，我们带上伞吧。",
    ],
    "en": [
        "Hello, the weather is lovely today.",
        "I am waiting at the cafe in front of the station.",
        "Last night I stayed up late reading a book.",
        "There is an old lighthouse in this little town.",
        "Shall we go to the market together tomorrow morning?",
        "It looks like rain, so let us take an umbrella.",
    ],
}
RUNS = {
    "kokoro (first start)": ("kokoro", "ja", ""),
    "kokoro": ("kokoro", "ja", ""),
    "espeak cmn": ("espeak", "zh", "cmn"),
    "espeak en-us": ("espeak", "en", "en-us"),
}


def worker(engine_name: str, language: str, voice: str, model_dir: Path) -> None:
    """Runs in the fresh Python: loads one engine, speaks the sentences, prints one JSON line."""
    engine: SpeechEngine
    if engine_name == "kokoro":
        from bot.voice.kokoro import KokoroSpeech

        engine = kokoro = KokoroSpeech(model_dir, threads=1)
        load = kokoro.load
    else:
        from bot.voice.espeak import EspeakSpeech

        engine = espeak = EspeakSpeech(threads=1)
        load = espeak.load
    imported_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    load()
    load_s = time.perf_counter() - started

    async def speak_all() -> tuple[list[float], float]:
        await engine.speak(SENTENCES[language][0], voice=voice, speed=1.0)
        ratios, audio_s = [], 0.0
        for sentence in SENTENCES[language]:
            began = time.perf_counter()
            speech = await engine.speak(sentence, voice=voice, speed=1.0)
            ratios.append((time.perf_counter() - began) / speech.duration_s)
            audio_s += speech.duration_s
        return ratios, audio_s

    ratios, audio_s = asyncio.run(speak_all())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "load_s": load_s,
                "ratios": ratios,
                "audio_s": audio_s,
                "peak_kib": peak_kib,
                "imported_kib": imported_kib,
            }
        )
    )


def bare_peak_kib() -> int:
    code = "import resource, numpy; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    return int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )


def run_worker(engine_name: str, language: str, voice: str, model_dir: Path) -> dict[str, object]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        engine_name,
        language,
        voice,
        "--model-dir",
        str(model_dir),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine_name} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return re.sub(r"[-_.]+", "-", match.group(0) if match else requirement).lower()


def _closure(names: list[str]) -> set[str]:
    """``names`` and everything they need (ignoring their extras and environment markers that exclude
    this Python), as installed here."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    pending = [_name(name) for name in names]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(_name(requirement.name))
    return seen


def _installed_bytes(name: str) -> int:
    total = 0
    for file in metadata.distribution(name).files or ():
        try:
            total += Path(str(file.locate())).stat().st_size
        except OSError:
            total += file.size or 0
    return total


def install_sizes() -> list[tuple[str, int]]:
    """The distributions the ``voice`` extra adds to a core install, with their installed sizes."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    core = _closure(project["dependencies"])
    added = _closure(project["optional-dependencies"]["voice"]) - core
    return sorted(((name, _installed_bytes(name)) for name in added), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "LANGUAGE", "VOICE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--model-dir", type=Path, help="where Kokoro's weights are joined (default: a temp dir)"
    )
    args = parser.parse_args()
    if args.worker:
        engine_name, language, voice = args.worker
        worker(engine_name, language, voice, args.model_dir)
        return

    model_dir = args.model_dir or Path(tempfile.mkdtemp(prefix="bench-voice-"))
    bare = bare_peak_kib()
    print(
        f"{'engine':<22} {'load s':>7} {'compute s / audio s':>20} {'audio s':>8} "
        f"{'peak RSS added':>15} {'by the engine':>14}"
    )
    for label, (engine_name, language, voice) in RUNS.items():
        if label.endswith("(first start)"):
            (model_dir / "kokoro-v1.0.int8.onnx").unlink(missing_ok=True)
        result = run_worker(engine_name, language, voice, model_dir)
        ratios = result["ratios"]
        assert isinstance(ratios, list)
        peak = int(str(result["peak_kib"]))
        own_mib = (peak - int(str(result["imported_kib"]))) / 1024
        print(
            f"{label:<22} {float(str(result['load_s'])):>7.3f} {statistics.median(ratios):>20.3f} "
            f"{float(str(result['audio_s'])):>8.1f} {(peak - bare) / 1024:>11.0f} MiB {own_mib:>10.0f} MiB"
        )
    print(
        f"(peak RSS added: over a bare python that imported numpy, {bare / 1024:.0f} MiB; by the engine: "
        "over the same process once the bot's modules were imported, as a running bot has them)"
    )

    print('\nwhat pip install -e ".[voice]" adds to a core install:')
    sizes = install_sizes()
    for name, size in sizes:
        print(f"  {name:<30} {size / 2**20:>7.1f} MiB")
    print(f"  {'total':<30} {sum(size for _name, size in sizes) / 2**20:>7.1f} MiB")
    joined = (model_dir / "kokoro-v1.0.int8.onnx").stat().st_size
    print(f"and on the first start, Kokoro's joined weights in data/models/: {joined / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
