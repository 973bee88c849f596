"""Pretrain the bundled toy model: a small Qwen3 causal LM on the toy corpus, on CPU, seeded.

Uses the transformers `Trainer` (AdamW, cosine schedule, grad clipping, seeded sampler) over
pre-packed blocks: each block is `<s> doc </s> doc </s> ...` right-padded to `block_size`, so <s>
is always at position 0 as it is at inference. Documents are re-shuffled for every epoch's packing,
so neighbouring documents differ between epochs. Qwen3 gives GQA and qk-norm out of the box, which
are the architecture features the engine has to handle.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from transformers import (PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM, Trainer, TrainerCallback,
                          TrainingArguments)

from interp.data.toy import corpus_path as bundled_corpus_path
from interp.data.toy.corpus import read_corpus
from interp.data.toy.tokenizer import save_tokenizer, train_tokenizer
from interp.errors import InterpError

TRAIN_LOG = "train.log"


@dataclass
class ToyModelConfig:
    """Architecture of the toy model (a deliberately small Qwen3: GQA 8:2, qk-norm, tied embeddings)."""

    hidden_size: int = 256
    intermediate_size: int = 640
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    num_key_value_heads: int = 2
    head_dim: int = 32
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0
    rope_factor: float = 1.0  # linear RoPE scaling: every rotary frequency divided by this (weaker positions)

    def with_overrides(self, overrides: dict) -> "ToyModelConfig":
        """This config with some fields replaced (`interp toy train --arch rope_theta=1e6`); bad keys or values are errors."""
        kinds = {f.name: f.type for f in fields(self)}  # "int" | "float" (annotations are strings here)
        unknown = sorted(set(overrides) - set(kinds))
        if unknown:
            raise InterpError(f"--arch: unknown field(s) {', '.join(unknown)}; choose from {', '.join(kinds)}")
        values = {}
        for key, value in overrides.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InterpError(f"--arch {key}: must be a positive number, not {value!r}")
            if kinds[key] == "int" and value != int(value):
                raise InterpError(f"--arch {key}: must be a whole number, not {value!r}")
            values[key] = float(value) if kinds[key] == "float" else int(value)
        return replace(self, **values).checked()

    def checked(self) -> "ToyModelConfig":
        """This config, if it describes a model that can be built and run; else a one-line InterpError."""
        heads, kv_heads = self.num_attention_heads, self.num_key_value_heads
        if heads % kv_heads:
            raise InterpError(f"--arch: num_attention_heads ({heads}) must be a multiple of num_key_value_heads "
                              f"({kv_heads}): each key/value head serves a whole group of query heads")
        if self.head_dim % 2:
            raise InterpError(f"--arch: head_dim must be even (rotary embeddings rotate pairs), not {self.head_dim}")
        return self

    def to_qwen3(self, tokenizer: PreTrainedTokenizerFast) -> Qwen3Config:
        return Qwen3Config(
            vocab_size=len(tokenizer), tie_word_embeddings=True, rms_norm_eps=1e-6, attention_dropout=0.0,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, use_sliding_window=False,
            hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads, head_dim=self.head_dim,
            max_position_embeddings=self.max_position_embeddings,
            rope_parameters=rope_parameters(self.rope_theta, self.rope_factor),
        )


def rope_parameters(theta: float, factor: float = 1.0) -> dict:
    """transformers' rope_parameters: plain RoPE, or linear scaling (each frequency / factor) when factor ≠ 1."""
    if factor == 1.0:
        return {"rope_type": "default", "rope_theta": theta}
    return {"rope_type": "linear", "rope_theta": theta, "factor": factor}


def _continued_model(init_from: str | Path, rope_factor: float | None) -> Qwen3ForCausalLM:
    """A saved toy checkpoint to continue, its rotary frequencies further divided by rope_factor if given."""
    if rope_factor is None:
        return Qwen3ForCausalLM.from_pretrained(str(init_from))
    config = Qwen3Config.from_pretrained(str(init_from))
    rope = dict(config.rope_parameters or {})
    config.rope_parameters = rope_parameters(float(rope.get("rope_theta", 10000.0)),
                                             float(rope.get("factor", 1.0)) * rope_factor)
    return Qwen3ForCausalLM.from_pretrained(str(init_from), config=config)


@dataclass
class ToyTrainResult:
    """What a training run did; written to train_result.json next to the checkpoint."""

    out_dir: str
    seed: int
    steps: int
    tokens_seen: int
    n_documents: int
    corpus_tokens: int
    parameters: int
    train_seconds: float
    first_loss: float  # mean loss over the first logging window
    final_loss: float  # mean loss over the last logging window
    losses: list[float] = field(default_factory=list)  # one per logging window


class _Snapshots(TrainerCallback):
    """Saves model + tokenizer to out_dir/snapshots/step-N every `every` steps (to look at a run early)."""

    def __init__(self, out: Path, tokenizer: PreTrainedTokenizerFast, every: int) -> None:
        self.out, self.tokenizer, self.every = out, tokenizer, every

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001 - Trainer's signature
        if model is not None and state.global_step % self.every == 0 and state.global_step < state.max_steps:
            path = self.out / "snapshots" / f"step-{state.global_step}"
            model.save_pretrained(str(path), safe_serialization=True)
            save_tokenizer(self.tokenizer, path)


class _BlockDataset(torch.utils.data.Dataset):
    def __init__(self, blocks: list[list[int]]):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> list[int]:
        return self.blocks[i]


def pack_blocks(doc_ids: list[list[int]], block_size: int, bos_id: int, eos_id: int, rng: random.Random,
                n_epochs: int) -> list[list[int]]:
    """`n_epochs` packings of the documents, each in a fresh shuffled order, as `<s> d </s> d </s>...`."""
    blocks: list[list[int]] = []
    for _ in range(n_epochs):
        order = list(range(len(doc_ids)))
        rng.shuffle(order)
        block = [bos_id]
        for i in order:
            piece = doc_ids[i][: block_size - 2] + [eos_id]
            if len(block) + len(piece) > block_size:
                blocks.append(block)
                block = [bos_id]
            block += piece
        blocks.append(block)
    return blocks


def _collate(pad_id: int):
    def collate(batch: list[list[int]]) -> dict[str, torch.Tensor]:
        width = max(len(b) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, b in enumerate(batch):
            ids[r, : len(b)] = torch.tensor(b)
            mask[r, : len(b)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return collate


class _LossLog(TrainerCallback):
    """Collects the logged losses and appends one line per logging window to train.log."""

    def __init__(self, path: Path) -> None:
        self.losses: list[float] = []
        self.path = path
        self.start = time.time()

    def write(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - Trainer's signature
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))
            self.write(f"step {state.global_step:5d}/{state.max_steps}  loss {float(logs['loss']):.4f}  "
                       f"lr {float(logs.get('learning_rate', float('nan'))):.2e}  {time.time() - self.start:7.1f}s")


def _read_documents(path: Path, max_documents: int | None) -> list[str]:
    """The corpus's documents (the first `max_documents`), refusing a missing or empty corpus in one line."""
    if not path.is_file():
        raise InterpError(f"no such corpus file: {path}")
    try:
        docs = read_corpus(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InterpError(f"cannot read corpus {path}: {exc}") from None
    docs = docs[:max_documents] if max_documents is not None else docs
    if not any(doc.strip() for doc in docs):
        raise InterpError(f"corpus {path} has no documents: nothing to train on")
    return docs


def train_toy_model(
    out_dir: str | Path,
    seed: int = 0,
    steps: int = 1400,
    batch_size: int = 16,
    block_size: int = 256,
    learning_rate: float = 2e-3,
    warmup_steps: int = 100,
    weight_decay: float = 0.1,
    model: ToyModelConfig | None = None,
    corpus_path: str | Path | None = None,
    tokenizer_dir: str | Path | None = None,
    vocab_size: int = 4096,
    logging_steps: int = 25,
    max_documents: int | None = None,
    threads: int | None = None,
    snapshot_steps: int | None = None,
    init_from: str | Path | None = None,
    rope_factor: float | None = None,
) -> ToyTrainResult:
    """Train a fresh toy model on the corpus and save model + tokenizer (safetensors) to out_dir.

    `tokenizer_dir` reuses a saved tokenizer instead of training one on the corpus (the tests use
    the bundled one to stay fast); `max_documents` trains on a corpus prefix for quick runs;
    `threads` sets torch's CPU threads; `snapshot_steps` saves interim checkpoints under
    out_dir/snapshots/; `init_from` continues pretraining a saved toy checkpoint (its weights and
    tokenizer, a fresh schedule, documents packed in new orders) instead of starting from scratch;
    with it, `rope_factor` slows the checkpoint's rotary positions by that factor (linear scaling),
    the one change a continued run may make to the architecture. Progress goes to out_dir/train.log (kept with the model).
    """
    for name, value, least in (("steps", steps, 1), ("batch size", batch_size, 1), ("block size", block_size, 3)):
        if value < least:  # a block holds at least <s>, one token and </s>
            raise InterpError(f"{name} must be at least {least}, not {value}")
    if learning_rate <= 0 or warmup_steps < 0:
        raise InterpError(f"need a positive learning rate and 0 or more warmup steps, not {learning_rate} and {warmup_steps}")
    for name, value in (("threads", threads), ("snapshot steps", snapshot_steps)):
        if value is not None and value < 1:
            raise InterpError(f"{name} must be at least 1, not {value}")
    arch = (model or ToyModelConfig()).checked()
    if init_from is None and block_size > arch.max_position_embeddings:
        raise InterpError(f"block size {block_size} is longer than the model's max_position_embeddings "
                          f"({arch.max_position_embeddings}): lower --block-size or raise it with --arch")
    docs = _read_documents(Path(corpus_path) if corpus_path else bundled_corpus_path(), max_documents)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed if init_from is None else f"{seed}:continued")
    if init_from is not None or tokenizer_dir is not None:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(init_from or tokenizer_dir))
    else:
        tokenizer = train_tokenizer(docs, vocab_size)
    doc_ids = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in docs]
    corpus_tokens = sum(len(d) + 1 for d in doc_ids)
    epochs_needed = math.ceil(steps * batch_size * block_size / max(corpus_tokens, 1)) + 1
    blocks = pack_blocks(doc_ids, block_size, tokenizer.bos_token_id, tokenizer.eos_token_id, rng, epochs_needed)

    if rope_factor is not None and (init_from is None or rope_factor <= 0):
        raise InterpError(f"rope_factor continues a saved model (--init-from) and must be positive, not {rope_factor}")
    lm = _continued_model(init_from, rope_factor) if init_from else Qwen3ForCausalLM(arch.to_qwen3(tokenizer))
    lm.generation_config.pad_token_id = tokenizer.pad_token_id
    args = TrainingArguments(
        output_dir=str(out / "_trainer"), max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, warmup_steps=warmup_steps, lr_scheduler_type="cosine",
        weight_decay=weight_decay, adam_beta2=0.98, max_grad_norm=1.0, logging_steps=min(logging_steps, steps),
        save_strategy="no", report_to=[], use_cpu=True, seed=seed, data_seed=seed, dataloader_num_workers=0,
        disable_tqdm=True, remove_unused_columns=False,
    )
    log = _LossLog(out / TRAIN_LOG)
    log.path.write_text("", encoding="utf-8")
    log.write((f"continued from {init_from}  " if init_from else "")
              + (f"rotary positions slowed {rope_factor:g}x ({lm.config.rope_parameters})  " if rope_factor else "") + f"seed {seed}  steps {steps}  batch {batch_size} x {block_size}  lr {learning_rate}  "
              f"threads {torch.get_num_threads()}  {len(docs)} documents  {corpus_tokens} corpus tokens  "
              f"{sum(p.numel() for p in lm.parameters())} parameters  {arch}")
    trainer = Trainer(model=lm, args=args, train_dataset=_BlockDataset(blocks),
                      data_collator=_collate(tokenizer.pad_token_id), callbacks=[log])
    if snapshot_steps:
        trainer.add_callback(_Snapshots(out, tokenizer, snapshot_steps))
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    log.write(f"done in {seconds:.0f}s")

    lm.config.use_cache = True  # training switches the KV cache off; generation wants it back
    lm.save_pretrained(str(out), safe_serialization=True)
    save_tokenizer(tokenizer, out)
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    mean_block = sum(len(b) for b in blocks) / len(blocks)
    tokens_seen = int(steps * batch_size * mean_block)
    result = ToyTrainResult(
        out_dir=str(out), seed=seed, steps=steps, tokens_seen=tokens_seen, n_documents=len(docs),
        corpus_tokens=corpus_tokens, parameters=sum(p.numel() for p in lm.parameters()),
        train_seconds=round(seconds, 1), first_loss=log.losses[0] if log.losses else float("nan"),
        final_loss=log.losses[-1] if log.losses else float("nan"), losses=log.losses,
    )
    (out / "train_result.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
    return result

