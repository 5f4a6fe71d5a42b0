"""Characters speak: the speech seam, its engines, and the characters' own recorded lines.

* :mod:`.speech`: :class:`~bot.voice.speech.Speech` (what an engine makes) and the
  :class:`~bot.voice.speech.SpeechEngine` seam;
* the engines: any OpenAI-compatible ``/v1/audio/speech`` endpoint, Kokoro-82M for Japanese, and
  espeak-ng for Chinese, Cantonese and English, all offline but the first;
* :mod:`.audio`: WAV in, the format chats get out (through ffmpeg), and the cache under
  ``data/voice/``.
"""
