"""Tokenizers through HF ``tokenizers``: load a ``tokenizer.json`` or train a byte-level BPE.

The model's embedding table is padded past the tokenizer's vocabulary to a multiple
(GPT-NeoX's 50,277 ids become 50,432 rows) so matmuls tile well; ``padded_vocab_size``
gives that size and the training loop checks the model covers it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from scaling_jax import atomic
from scaling_jax.errors import InputNotFound, UserError

EOD_TOKEN = "<|endoftext|>"


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """A loaded tokenizer, its source file and its end-of-document id."""

    hf: HFTokenizer
    path: str
    eod_id: int

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids)


def padded_vocab_size(vocab_size: int, multiple: int = 128) -> int:
    """Smallest multiple of ``multiple`` that holds ``vocab_size`` ids."""
    if vocab_size < 1 or multiple < 1:
        raise UserError(f"vocab_size {vocab_size} and multiple {multiple} must be positive")
    return -(-vocab_size // multiple) * multiple


def load_tokenizer(path: str | Path, eod_token: str = EOD_TOKEN) -> Tokenizer:
    """Load a ``tokenizer.json``; the end-of-document token must be in its vocabulary."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"tokenizer file not found: {path}")
    try:
        hf = HFTokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
        raise UserError(f"{path}: not a valid tokenizer.json: {e}") from e
    eod_id = hf.token_to_id(eod_token)
    if eod_id is None:
        raise UserError(f"{path}: end-of-document token {eod_token!r} is not in the vocabulary")
    return Tokenizer(hf=hf, path=str(path), eod_id=eod_id)


def train_bpe(texts: Iterable[str], vocab_size: int, out_path: str | Path,
              eod_token: str = EOD_TOKEN) -> Tokenizer:
    """Train a byte-level BPE of ``vocab_size`` ids (EOD included) and save it atomically."""
    if vocab_size < 257:
        raise UserError(f"vocab_size {vocab_size}: a byte-level BPE needs at least 257 ids")
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[eod_token], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    hf.train_from_iterator(texts, trainer=trainer)
    atomic.write_text(out_path, hf.to_str())
    return load_tokenizer(out_path, eod_token)
