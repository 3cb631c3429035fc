"""A real-text corpus on every machine: the Python standard library's own source files.

Files are read in sorted order from this interpreter's stdlib (``site-packages``
excluded), a byte-level BPE is trained on them, and they are prepared as a corpus with
every ``val_every``-th file held out for validation.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from scaling_jax.data import prepare as prep
from scaling_jax.data.tokenizer import train_bpe
from scaling_jax.errors import InputNotFound, UserError


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob("*.py")
                  if "site-packages" not in p.parts and "dist-packages" not in p.parts)


def build(out: str | Path, vocab_size: int = 8192, val_every: int = 20,
          max_files: int | None = None) -> dict:
    """Tokenizer at ``out/tokenizer.json`` and the corpus under ``out``; returns metadata."""
    out = Path(out)
    if parts := prep.store.existing_parts(str(out)):
        raise UserError(f"{out}: already holds {parts}; choose a new output path")
    files = stdlib_files()[:max_files]
    if not files:
        raise InputNotFound(f"no .py files under {sysconfig.get_paths()['stdlib']}")
    texts = lambda: (f.read_text(encoding="utf-8", errors="replace") for f in files)  # noqa: E731
    tok = train_bpe(texts(), vocab_size, out / "tokenizer.json")
    return prep.prepare(texts(), tok, str(out), val_every=val_every,
                        source=f"python stdlib {sysconfig.get_paths()['stdlib']} ({len(files)} files)")
