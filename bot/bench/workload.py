"""The messages every bench run sends: the same list, in the same order, to each implementation.

A group chat's everyday talk to a character, from a handful of members, in the pack's language. The
texts are varied on purpose (numbers, objects, moods), so retrieval and history see different input
each time rather than one cached question.
"""

from __future__ import annotations

from dataclasses import dataclass

SPEAKERS = ("Pip", "Tam", "Ines", "Wren", "Jory")
SPEAKERS_ZH = ("阿杰", "老周", "林医生", "钱阿姨", "王叔")

LINES = (
    "is a storm coming tonight?",
    "how is the cat doing these days?",
    "what did you write in the logbook this morning?",
    "do you ever miss the mainland?",
    "what is cooking on the stove today?",
    "can you teach me to tie a proper knot?",
    "I lost my keys again, have you seen them?",
    "tell me about the worst night you ever had out here",
    "the ferry was late for the {n}th time, what is going on?",
    "would you come to the harvest dance on Saturday?",
    "I think I saw a seal near the rocks",
    "how many steps are there up the tower?",
    "my brother wants to visit, is there room?",
    "what do you do when the lamp fails?",
    "do you believe the old stories about the drowned bell?",
    "I am feeling a bit low today",
    "give me one piece of advice for the winter",
    "who was the keeper before you?",
    "is it true you once swam to the mainland?",
    "we are playing cards tonight, want to join?",
)
LINES_ZH = (
    "今天有什么好茶推荐？",
    "最近身体有点累，喝什么比较好？",
    "你奶奶以前常说什么话？",
    "我第{n}次迟到了，老板又骂我了",
    "周末巷子里有什么热闹吗？",
    "龙井和碧螺春有什么不一样？",
    "我想学泡茶，从哪儿开始？",
    "你最怕什么样的客人？",
    "下雨天适合喝什么茶？",
    "我妈又催我找对象了，烦死了",
    "老周今天来下棋了吗？",
    "茶馆开了多少年了？",
    "失眠的时候能喝茶吗？",
    "帮我挑一个送长辈的茶吧",
    "你有没有想过关掉茶馆去别的地方？",
    "今天心情不太好",
    "冬天来了，有什么要注意的？",
    "外卖骑手阿杰最近怎么样？",
    "你泡茶的时候在想什么？",
    "晚上一起打牌吗？",
)


OPENERS = (
    "",
    "hey, ",
    "so ",
    "quick one: ",
    "honestly, ",
    "listen, ",
    "random thought: ",
    "ok but ",
    "wait, ",
    "hm, ",
)
OPENERS_ZH = (
    "",
    "对了，",
    "哎，",
    "问你个事，",
    "说真的，",
    "你听我说，",
    "突然想到，",
    "话说，",
    "等等，",
    "嗯，",
)


@dataclass(slots=True, frozen=True)
class BenchMessage:
    speaker: str
    user_id: str
    text: str


def workload(count: int, language: str = "en") -> list[BenchMessage]:
    """``count`` messages for a pack in ``language`` (``zh`` or anything else for English); the first
    200 are all different, so no cache answers for the work."""
    speakers, lines, openers = (
        (SPEAKERS_ZH, LINES_ZH, OPENERS_ZH) if language == "zh" else (SPEAKERS, LINES, OPENERS)
    )
    messages = []
    for number in range(count):
        speaker = number % len(speakers)
        line = lines[(number * 7) % len(lines)].format(n=number + 3)
        text = openers[(number // len(lines)) % len(openers)] + line
        messages.append(BenchMessage(speakers[speaker], str(7000 + speaker), text))
    return messages
