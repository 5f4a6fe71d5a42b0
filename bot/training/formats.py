"""The four training-file formats, each a schema every written record is checked against.

- ``openai``: OpenAI's fine-tuning JSONL, ``{"messages": [{"role": "system"|"user"|"assistant",
  "content": …}, …]}``; LLaMA-Factory and XTuner (``openai_map_fn``) read it too.
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt", "value": …}, …], "system": …}``, the
  layout LLaMA-Factory's ``formatting: sharegpt`` reads.
- ``alpaca``: ``{"instruction", "input", "output", "system", "history": [[user, reply], …]}``: the
  last exchange is the instruction and output, the ones before it the history.
- ``xtuner``: XTuner's multi-turn ``{"conversation": [{"system", "input", "output"}, {"input",
  "output"}, …]}``, the system prompt on the first turn only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.errors import ExportError
from bot.training.conversations import Conversation, TrainingTurn

FormatName = Literal["openai", "sharegpt", "alpaca", "xtuner"]
Text = Field(min_length=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class OpenAIMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Text


class OpenAIRecord(_Strict):
    messages: list[OpenAIMessage] = Field(min_length=2)

    @model_validator(mode="after")
    def _alternates(self) -> OpenAIRecord:
        roles = [message.role for message in self.messages]
        if "system" in roles[1:]:
            raise ValueError("only the first message may be the system's")
        _check_alternation([role for role in roles if role != "system"], "user", "assistant")
        return self


class ShareGPTTurn(_Strict):
    speaker: Literal["human", "gpt"] = Field(alias="from")
    value: str = Text


class ShareGPTRecord(_Strict):
    conversations: list[ShareGPTTurn] = Field(min_length=2)
    system: str = Text

    @model_validator(mode="after")
    def _alternates(self) -> ShareGPTRecord:
        _check_alternation([turn.speaker for turn in self.conversations], "human", "gpt")
        return self


class AlpacaRecord(_Strict):
    instruction: str = Text
    input: str
    output: str = Text
    system: str = Text
    history: list[Annotated[list[str], Field(min_length=2, max_length=2)]]


class XTunerTurn(_Strict):
    system: str | None = None
    input: str = Text
    output: str = Text


class XTunerRecord(_Strict):
    conversation: list[XTunerTurn] = Field(min_length=1)

    @model_validator(mode="after")
    def _system_first(self) -> XTunerRecord:
        if self.conversation[0].system is None:
            raise ValueError("the first turn must carry the system prompt")
        if any(turn.system is not None for turn in self.conversation[1:]):
            raise ValueError("only the first turn may carry the system prompt")
        return self


def _check_alternation(roles: list[str], user: str, assistant: str) -> None:
    expected = [user if number % 2 == 0 else assistant for number in range(len(roles))]
    if roles != expected or roles[-1:] != [assistant]:
        raise ValueError(f"turns must alternate {user}, {assistant}, … and end with {assistant}")


def _pairs(turns: list[TrainingTurn]) -> list[tuple[str, str]]:
    return [(turns[i].text, turns[i + 1].text) for i in range(0, len(turns) - 1, 2)]


def _openai(system: str, conversation: Conversation) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}]
    messages += [{"role": turn.role, "content": turn.text} for turn in conversation.turns]
    return {"messages": messages}


def _sharegpt(system: str, conversation: Conversation) -> dict[str, Any]:
    speaker = {"user": "human", "assistant": "gpt"}
    turns = [{"from": speaker[turn.role], "value": turn.text} for turn in conversation.turns]
    return {"conversations": turns, "system": system}


def _alpaca(system: str, conversation: Conversation) -> dict[str, Any]:
    *history, (instruction, output) = _pairs(conversation.turns)
    return {
        "instruction": instruction,
        "input": "",
        "output": output,
        "system": system,
        "history": [list(pair) for pair in history],
    }


def _xtuner(system: str, conversation: Conversation) -> dict[str, Any]:
    turns: list[dict[str, str]] = [
        {"input": asked, "output": said} for asked, said in _pairs(conversation.turns)
    ]
    turns[0] = {"system": system, **turns[0]}
    return {"conversation": turns}


@dataclass(slots=True, frozen=True)
class Format:
    name: FormatName
    render: Callable[[str, Conversation], dict[str, Any]]
    schema: type[BaseModel]

    def record(self, system: str, conversation: Conversation) -> dict[str, Any]:
        """``conversation`` as this format's record, checked against its schema."""
        record = self.render(system, conversation)
        try:
            self.schema.model_validate(record)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "record"
            raise ExportError(
                f"{conversation.origin}: not a valid {self.name} record ({where}: {problem['msg']})"
            ) from exc
        return record


FORMATS: dict[str, Format] = {
    "openai": Format("openai", _openai, OpenAIRecord),
    "sharegpt": Format("sharegpt", _sharegpt, ShareGPTRecord),
    "alpaca": Format("alpaca", _alpaca, AlpacaRecord),
    "xtuner": Format("xtuner", _xtuner, XTunerRecord),
}


def validate_record(name: str, record: object) -> None:
    """Raise :class:`pydantic.ValidationError` unless ``record`` fits format ``name``'s schema (for
    checking files written earlier, or by hand)."""
    FORMATS[name].schema.model_validate(record)
