#!/bin/bash
# Draws docs/img/console.png: the bot's console in tmux, shown in xterm on a virtual X display, with a
# member asking Orla and then 苏小满 by name (a stand-in model answers, so the picture is the same
# every time). Needs Debian's tmux, xvfb, xterm, imagemagick and fonts-noto-cjk:
#   apt-get install -y tmux xvfb xterm imagemagick fonts-noto-cjk && bash scripts/shoot_console.sh
set -e
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
cd "$WORK"
mkdir run2
(Xvfb :77 -screen 0 1400x900x24 >/dev/null 2>&1 &)
sleep 1
"$REPO/.venv/bin/python" - "$WORK" "$REPO" <<'PY' &
import sys, time, json
work, repo = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
from pathlib import Path
from tests.support.openai_server import FakeOpenAIServer
from tests.support.bot_process import REPO_ROOT, free_port, write_bot_toml
port = free_port()
with FakeOpenAIServer() as model:
    def answer(body):
        system = body["messages"][0]["content"]
        if "苏小满" in system:
            return "下雨天喝熟普最好，暖胃。坐下，水马上就开。"
        return "Aye, the lamp's lit and the kettle's on. Mind Barnacle, he's after your socks."
    model.reply_with(answer)
    write_bot_toml(Path(work, "run2", "bot.toml"),
        {"platforms": {"onebot": {"access_token": "t"}, "console": {"enabled": True}}},
        server={"host": "127.0.0.1", "port": port},
        llm={"base_url": model.base_url, "model": "fake-model"},
        embedding={"model": "hashing"},
        storage={"url": "sqlite+aiosqlite:///db/bot.sqlite3", "data_dir": f"{work}/run2/data"},
        characters={"dir": str(REPO_ROOT / "characters"), "default": "orla"})
    Path(work, "run2", "ready").write_text("1")
    while not Path(work, "run2", "next").exists(): time.sleep(0.2)
    while not Path(work, "run2", "done").exists(): time.sleep(0.2)
PY
while [ ! -f run2/ready ]; do sleep 0.2; done
tmux kill-session -t shot 2>/dev/null || true
export TERM=xterm-256color
tmux new-session -d -s shot -x 120 -y 34 "cd $WORK/run2 && COLORTERM=truecolor $REPO/.venv/bin/python -m bot --config bot.toml"
tmux set -t shot status off
sleep 12
tmux send-keys -t shot "Evening Orla, is the lamp lit?" Enter
sleep 4
touch run2/next
tmux send-keys -t shot "小满，下雨了，来壶什么茶？" Enter
sleep 4
DISPLAY=:77 xterm -tn xterm-256color -geometry 120x34+0+0 -fa "DejaVu Sans Mono" -fd "Noto Sans Mono CJK SC" -fs 11 -bg "#1e1e1e" -fg "#dddddd" -e tmux attach -t shot &
sleep 4
DISPLAY=:77 import -window root "$WORK/xterm.png"
kill %1 2>/dev/null || true
tmux send-keys -t shot C-q
sleep 2
touch run2/done
tmux kill-session -t shot 2>/dev/null || true
export TERM=xterm-256color
wait
"$REPO/.venv/bin/python" -c "
from PIL import Image
Image.open('$WORK/xterm.png').crop((0, 0, 1084, 628)).save('$REPO/docs/img/console.png', optimize=True)"
pkill -f "Xvfb :77" || true
