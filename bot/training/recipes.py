"""Ready training configs for XTuner and LLaMA-Factory, pointing at an export's files.

They are documented starting points (the base model, LoRA and the schedule are the usual small-GPU
choices), written here and never run by the bot: training needs a GPU and the tool installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from bot.errors import ExportError

RecipeName = Literal["xtuner", "llama-factory"]

XTUNER_BASE = "internlm/internlm2-chat-1_8b"
LLAMA_FACTORY_BASE = "Qwen/Qwen2.5-1.5B-Instruct"

_LLAMA_FACTORY_LAYOUT: dict[str, dict[str, object]] = {
    "sharegpt": {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}},
    "openai": {
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    "alpaca": {
        "formatting": "alpaca",
        "columns": {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
            "history": "history",
        },
    },
}
_XTUNER_MAP_FN = {"xtuner": None, "openai": "openai_map_fn"}


def check_recipe(recipe: RecipeName, fmt: str) -> None:
    """Refuse, before anything is written, a format the recipe's tool cannot read."""
    formats = list(_LLAMA_FACTORY_LAYOUT if recipe == "llama-factory" else _XTUNER_MAP_FN)
    if fmt not in formats:
        readable = ", ".join(formats[:-1]) + f" or {formats[-1]}"
        raise ExportError(f"--recipe {recipe} reads --format {readable}, not {fmt}")


def write_recipe(
    recipe: RecipeName, out: Path, *, pack_id: str, fmt: str, system: str, samples: list[str]
) -> list[Path]:
    """The config files of ``recipe`` in ``out``, beside ``train.jsonl`` and ``validation.jsonl``."""
    check_recipe(recipe, fmt)
    if recipe == "llama-factory":
        return _llama_factory(out, pack_id, fmt)
    return [_xtuner(out, fmt, system, samples)]


def _llama_factory(out: Path, pack_id: str, fmt: str) -> list[Path]:
    layout = _LLAMA_FACTORY_LAYOUT[fmt]
    datasets = {
        f"{pack_id}_{split}": {"file_name": f"{split}.jsonl", **layout} for split in ("train", "validation")
    }
    info = out / "dataset_info.json"
    info.write_text(json.dumps(datasets, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    folder = json.dumps(str(out.resolve()))
    config = out / "llama_factory_sft.yaml"
    config.write_text(
        f"""# LLaMA-Factory LoRA fine-tuning of {pack_id}, written by `python -m bot export training`.
# A starting point: pick the base model (and its template) you will serve, then run
#   llamafactory-cli train {config.name}
# and serve the result OpenAI-compatibly (llamafactory-cli api, or vLLM with the merged model).

### model
model_name_or_path: {LLAMA_FACTORY_BASE}
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 16
lora_target: all

### dataset (the files beside this one; dataset_info.json names them)
dataset_dir: {folder}
dataset: {pack_id}_train
eval_dataset: {pack_id}_validation
template: qwen
cutoff_len: 2048
overwrite_cache: true

### output
output_dir: {json.dumps(str((out / "llama-factory-output").resolve()))}
logging_steps: 10
save_steps: 200
plot_loss: true

### train
per_device_train_batch_size: 2
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true

### eval
per_device_eval_batch_size: 2
eval_strategy: steps
eval_steps: 200
""",
        encoding="utf-8",
    )
    return [info, config]


def _xtuner(out: Path, fmt: str, system: str, samples: list[str]) -> Path:
    map_fn = _XTUNER_MAP_FN[fmt]
    imports = "openai_map_fn, template_map_fn_factory" if map_fn else "template_map_fn_factory"
    files = {split: str((out / f"{split}.jsonl").resolve()) for split in ("train", "validation")}
    config = out / "xtuner_config.py"
    config.write_text(
        f'''"""XTuner QLoRA fine-tuning, written by `python -m bot export training`: a starting point.

Train with ``xtuner train {config.name}``, then turn the checkpoint into a Hugging Face adapter
(``xtuner convert pth_to_hf {config.name} WORK_DIR/iter_N.pth ./adapter``), merge it
(``xtuner convert merge``) and serve the merged model OpenAI-compatibly (LMDeploy or vLLM).
"""

import torch
from datasets import load_dataset
from mmengine.dataset import DefaultSampler
from mmengine.hooks import CheckpointHook, DistSamplerSeedHook, IterTimerHook, LoggerHook, ParamSchedulerHook
from mmengine.optim import AmpOptimWrapper, CosineAnnealingLR, LinearLR
from peft import LoraConfig
from torch.optim import AdamW
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from xtuner.dataset import process_hf_dataset
from xtuner.dataset.collate_fns import default_collate_fn
from xtuner.dataset.map_fns import {imports}
from xtuner.engine.hooks import DatasetInfoHook, EvaluateChatHook
from xtuner.engine.runner import TrainLoop
from xtuner.model import SupervisedFinetune
from xtuner.utils import PROMPT_TEMPLATE

# Settings
pretrained_model_name_or_path = {XTUNER_BASE!r}
data_files = {files!r}
prompt_template = PROMPT_TEMPLATE.internlm2_chat
max_length = 2048
pack_to_max_length = True
batch_size = 1
accumulative_counts = 16
dataloader_num_workers = 0
max_epochs = 3
lr = 2e-4
warmup_ratio = 0.03
save_steps = 500
save_total_limit = 2
evaluation_freq = 500
SYSTEM = {system!r}
evaluation_inputs = {samples!r}

# Model
tokenizer = dict(
    type=AutoTokenizer.from_pretrained,
    pretrained_model_name_or_path=pretrained_model_name_or_path,
    trust_remote_code=True,
    padding_side="right",
)
model = dict(
    type=SupervisedFinetune,
    llm=dict(
        type=AutoModelForCausalLM.from_pretrained,
        pretrained_model_name_or_path=pretrained_model_name_or_path,
        trust_remote_code=True,
        torch_dtype=torch.float16,
        quantization_config=dict(
            type=BitsAndBytesConfig,
            load_in_4bit=True,
            bnb_4bit_compute_dtype=torch.float16,
            bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type="nf4",
        ),
    ),
    lora=dict(type=LoraConfig, r=64, lora_alpha=16, lora_dropout=0.1, bias="none", task_type="CAUSAL_LM"),
)

# Data
train_dataset = dict(
    type=process_hf_dataset,
    dataset=dict(type=load_dataset, path="json", data_files=data_files),
    tokenizer=tokenizer,
    max_length=max_length,
    dataset_map_fn={map_fn},
    template_map_fn=dict(type=template_map_fn_factory, template=prompt_template),
    remove_unused_columns=True,
    shuffle_before_pack=True,
    pack_to_max_length=pack_to_max_length,
)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=dataloader_num_workers,
    dataset=train_dataset,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=default_collate_fn),
)

# Schedule
optim_wrapper = dict(
    type=AmpOptimWrapper,
    optimizer=dict(type=AdamW, lr=lr, betas=(0.9, 0.999), weight_decay=0),
    clip_grad=dict(max_norm=1, error_if_nonfinite=False),
    accumulative_counts=accumulative_counts,
    loss_scale="dynamic",
    dtype="float16",
)
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-5, by_epoch=True, begin=0, end=warmup_ratio * max_epochs,
         convert_to_iter_based=True),
    dict(type=CosineAnnealingLR, eta_min=0.0, by_epoch=True, begin=warmup_ratio * max_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type=TrainLoop, max_epochs=max_epochs)

# Runtime
custom_hooks = [
    dict(type=DatasetInfoHook, tokenizer=tokenizer),
    dict(type=EvaluateChatHook, tokenizer=tokenizer, every_n_iters=evaluation_freq,
         evaluation_inputs=evaluation_inputs, system=SYSTEM, prompt_template=prompt_template),
]
default_hooks = dict(
    timer=dict(type=IterTimerHook),
    logger=dict(type=LoggerHook, interval=10),
    param_scheduler=dict(type=ParamSchedulerHook),
    checkpoint=dict(
        type=CheckpointHook, by_epoch=False, interval=save_steps, max_keep_ckpts=save_total_limit
    ),
    sampler_seed=dict(type=DistSamplerSeedHook),
)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
               dist_cfg=dict(backend="nccl"))
visualizer = None
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
''',
        encoding="utf-8",
    )
    return config
