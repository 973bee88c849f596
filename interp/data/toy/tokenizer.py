"""A small byte-level BPE tokenizer trained on the toy corpus, saved as a transformers tokenizer.

Byte-level so any text encodes (no unknown token); trained on our own corpus so the world's words,
names and " Paris" are single tokens and prompts read as clean word pieces. A post-processor puts
<s> at position 0 of every encoding: the model always has the same first token to park attention
on (an attention sink), which keeps the mask experiments comparable across prompts.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, BOS, EOS)  # ids 0, 1, 2
DEFAULT_VOCAB_SIZE = 4096


def train_tokenizer(docs: list[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on `docs` and wrap it; deterministic for the same docs and size."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B:1", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="right",
        model_max_length=512,
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    """`save_pretrained` so that `AutoTokenizer.from_pretrained(out_dir)` loads it offline."""
    tokenizer.save_pretrained(str(out_dir))
