"""W&B's offline run folders read back: a ``run-<id>.wandb`` file is a LevelDB-style log (32 KiB
blocks, 7-byte chunk headers: checksum, length, type full/first/middle/last) of W&B's own
``wandb_internal_pb2.Record`` protobufs after a 7-byte ``:W&B`` file header. wandb 0.31 ships no
Python reader (``wandb sync --view`` and ``sdk/internal/datastore.py`` are gone), so the tests
decode the records with W&B's message types."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    """Every ``Record`` of one ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B transaction log"
    pos, buf = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + n]
        pos += HEADER + n
        if kind == FULL:
            yield pb.Record.FromString(chunk)
        elif kind == FIRST:
            buf = chunk
        elif kind == MIDDLE:
            buf += chunk
        elif kind == LAST:
            yield pb.Record.FromString(buf + chunk)


def _items(items) -> dict:
    return {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}


@dataclasses.dataclass
class OfflineRun:
    """One offline run folder: its run record's fields, history rows, final summary, record kinds."""

    folder: Path
    id: str
    name: str
    project: str
    group: str
    job_type: str
    tags: list[str]
    config: dict
    history: list[dict]
    summary: dict
    kinds: set[str]
    exit_code: int | None = None  # the exit record's, None without one


def read_offline_run(folder: Path) -> OfflineRun:
    (log,) = Path(folder).glob("run-*.wandb")
    run, history, summary, kinds, exit_code = None, [], {}, set(), None
    for r in records(log):
        kind = r.WhichOneof("record_type")
        kinds.add(kind)
        if kind == "run":
            run = r.run
        elif kind == "history":
            history.append(_items(r.history.item))
        elif kind == "summary":
            summary.update(_items(r.summary.update))
        elif kind == "exit":
            exit_code = r.exit.exit_code
    assert run is not None, f"{log}: no run record"
    config = {k: v for k, v in _items(run.config.update).items() if k != "_wandb"}
    return OfflineRun(Path(folder), run.run_id, run.display_name, run.project, run.run_group, run.job_type,
                      list(run.tags), config, history, summary, kinds, exit_code)


def offline_runs(run_dir: Path) -> list[OfflineRun]:
    """The offline W&B runs under a run folder's ``wandb/``, oldest first."""
    return [read_offline_run(d) for d in sorted((Path(run_dir) / "wandb").glob("offline-run-*"))]
