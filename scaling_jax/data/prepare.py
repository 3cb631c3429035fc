"""Tokenize text into a prepared corpus: ``train/`` and ``val/`` token arrays plus metadata.

Inputs are text files (one document each), folders of them, or JSONL files with one
document per line in a text field. An end-of-document id follows every document. Documents
are split by their running index: every ``val_every``-th document goes to validation, the
rest to training, so the splits are disjoint and the assignment is reproducible.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from scaling_jax.data import store
from scaling_jax.data.tokenizer import Tokenizer
from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.paths import join


def iter_documents(inputs: Sequence[str | Path], text_field: str = "text",
                   pattern: str = "*") -> Iterator[str]:
    """Documents from files, folders (recursively, sorted, matching ``pattern``) and JSONL."""
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            files = sorted(f for f in p.rglob(pattern) if f.is_file())
            if not files:
                raise InputNotFound(f"{p}: no files match {pattern!r}")
        elif p.is_file():
            files = [p]
        else:
            raise InputNotFound(f"input not found: {p}")
        for f in files:
            yield from _file_documents(f, text_field)


def _file_documents(path: Path, text_field: str) -> Iterator[str]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            for i, row in store.json_lines(fh, str(path)):
                if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                    raise UserError(f"{path}:{i}: no string field {text_field!r}")
                yield row[text_field]
    else:
        yield path.read_text(encoding="utf-8", errors="replace")


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def prepare(documents: Iterable[str], tokenizer: Tokenizer, out: str, *, val_every: int = 100,
            chunk: int = 1 << 16, batch_docs: int = 256, source: str = "") -> dict:
    """Write the corpus under ``out`` (local or ``gs://``); returns its metadata.

    Refuses to write where a corpus (or part of one) exists: nothing is ever overwritten.
    """
    if val_every < 2:
        raise UserError(f"val_every {val_every}: must be at least 2 (one val document in val_every)")
    if parts := store.existing_parts(out):
        raise UserError(f"{out}: already holds {parts}; choose a new output path")
    writers = {s: store.TokenWriter(join(out, s), chunk) for s in store.SPLITS}
    docs = {s: 0 for s in store.SPLITS}
    index = 0
    batch: list[str] = []

    def flush_batch() -> None:
        nonlocal index
        for ids in tokenizer.encode_batch(batch):
            split = "val" if index % val_every == 0 else "train"
            writers[split].append(np.asarray(ids + [tokenizer.eod_id], np.int32))
            docs[split] += 1
            index += 1
        batch.clear()

    for doc in documents:
        batch.append(doc)
        if len(batch) >= batch_docs:
            flush_batch()
    flush_batch()
    for w in writers.values():
        w.flush()
    meta = {
        "format": store.FORMAT,
        "tokenizer": tokenizer.path,
        "tokenizer_sha256": _sha256(tokenizer.path),
        "vocab_size": tokenizer.vocab_size,
        "eod_id": tokenizer.eod_id,
        "source": source,
        "val_every": val_every,
        "splits": {s: {"tokens": writers[s].n, "documents": docs[s]} for s in store.SPLITS},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    store.write_metadata(out, meta)
    return meta
