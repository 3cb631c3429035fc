"""Task files on ``gs://`` (a GCS emulator): a heavy.yaml naming bucket files reads the same rows
and file hash as the local copy, builds the same prompts, and a missing object is skipped with a
warning that names it, as a missing local file is."""

import hashlib

import pytest
import yaml

from scaling_jax import paths
from scaling_jax.eval.prompts import build_items
from scaling_jax.eval.tasks import load_task, read_task_list
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)


@pytest.mark.usefixtures("gcs_emulator")
def test_task_files_on_gs_read_as_local_ones(icl_dir, tmp_path):
    local = {s.label: s for s in read_task_list(icl_dir / "heavy.yaml")}
    copa = local["copa"]
    paths.write_bytes(f"gs://{BUCKET}/icl/copa.jsonl", paths.read_bytes(copa.dataset_uri))
    heavy = {"icl_tasks": [
        {"label": "copa", "dataset_uri": f"gs://{BUCKET}/icl/copa.jsonl", "num_fewshot": [copa.num_fewshot],
         "icl_task_type": copa.task_type, "continuation_delimiter": copa.continuation_delimiter},
        {"label": "gone", "dataset_uri": f"gs://{BUCKET}/icl/gone.jsonl", "num_fewshot": [0],
         "icl_task_type": "multiple_choice"}]}
    (tmp_path / "heavy.yaml").write_text(yaml.safe_dump(heavy))
    remote, gone = read_task_list(tmp_path / "heavy.yaml")
    assert remote.dataset_uri == f"gs://{BUCKET}/icl/copa.jsonl"  # not resolved against the list's folder
    a, b = load_task(copa), load_task(remote)
    assert b.rows == a.rows and b.sha256 == a.sha256 == hashlib.sha256(paths.read_bytes(copa.dataset_uri)).hexdigest()
    assert [it.prompts for it in build_items(b, True, 20)] == [it.prompts for it in build_items(a, True, 20)]
    with pytest.warns(UserWarning, match=f"gs://{BUCKET}/icl/gone.jsonl not found"):
        assert load_task(gone) is None
