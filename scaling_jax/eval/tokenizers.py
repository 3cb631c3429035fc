"""Tokenizers the evaluator brings itself: token-id text (the synthetic suite) and raw bytes (real
tasks on a model that has no text tokenizer, e.g. one trained on the synthetic language)."""

from __future__ import annotations

from scaling_jax.errors import UserError


class IdTokenizer:
    """Text of space-separated token ids <-> ids; the synthetic suite's tokenizer."""

    prefix_space = True

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.cache_key = ("ids", vocab_size)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        out = []
        for t in texts:
            try:
                ids = [int(w) for w in t.split()]
            except ValueError:
                raise UserError(f"synthetic task text {t[:40]!r}: not space-separated token ids") from None
            if any(not 0 <= i < self.vocab_size for i in ids):
                raise UserError(f"synthetic task text {t[:40]!r}: token id outside [0, {self.vocab_size})")
            out.append(ids)
        return out

    def decode(self, ids) -> str:
        return " ".join(str(int(i)) for i in ids)


class ByteTokenizer:
    """UTF-8 bytes, each id taken modulo the model's vocabulary: lets any model be scored on text
    (at chance unless it was trained on bytes); ``' a'`` is two ids, so no prefix space is added."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.cache_key = ("bytes", vocab_size)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [[b % self.vocab_size for b in t.encode("utf-8")] for t in texts]

    def decode(self, ids) -> str:
        if self.vocab_size >= 256:
            return bytes(int(i) for i in ids).decode("utf-8", errors="replace")
        return " ".join(str(int(i)) for i in ids)
