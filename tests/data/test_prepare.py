import json

import numpy as np
import pytest

from scaling_jax.cli import main
from scaling_jax.data import store
from scaling_jax.data.prepare import iter_documents, prepare
from scaling_jax.data.tokenizer import train_bpe


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    words = ["alpha beta gamma delta", "one two three four five", "x = y + z"]
    return train_bpe(words * 30, 300, tmp_path_factory.mktemp("tok") / "tokenizer.json")


def test_prepare_writes_disjoint_splits_with_eod(tmp_path, tok):
    docs = [f"document number {i} says alpha beta" for i in range(10)]
    meta = prepare(iter(docs), tok, str(tmp_path / "c"), val_every=5, chunk=16)
    assert meta["splits"]["val"]["documents"] == 2 and meta["splits"]["train"]["documents"] == 8
    arrays = {s: store.open_array(str(tmp_path / "c" / s)).read().result() for s in ("train", "val")}
    for s, a in arrays.items():
        assert len(a) == meta["splits"][s]["tokens"] and a[-1] == tok.eod_id
        assert (a == tok.eod_id).sum() == meta["splits"][s]["documents"]
    val_docs = tok.hf.decode(arrays["val"].tolist(), skip_special_tokens=False).split("<|endoftext|>")
    assert val_docs[:2] == [docs[0], docs[5]]
    assert store.read_metadata(str(tmp_path / "c"))["tokenizer"] == tok.path


def test_prepare_refuses_to_overwrite(tmp_path, tok):
    prepare(iter(["a b c"] * 4), tok, str(tmp_path / "c"), val_every=2)
    before = (tmp_path / "c" / "metadata.json").read_text()
    with pytest.raises(ValueError, match=r"already holds \['train', 'val', 'metadata.json'\]"):
        prepare(iter(["d e f"] * 4), tok, str(tmp_path / "c"), val_every=2)
    assert (tmp_path / "c" / "metadata.json").read_text() == before


def test_documents_from_folder_and_jsonl(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("second")
    (tmp_path / "d" / "a.txt").write_text("first")
    (tmp_path / "x.jsonl").write_text(json.dumps({"text": "third"}) + "\n\n" + json.dumps({"text": "fourth"}) + "\n")
    assert list(iter_documents([tmp_path / "d", tmp_path / "x.jsonl"])) == ["first", "second", "third", "fourth"]
    (tmp_path / "y.jsonl").write_text(json.dumps({"body": "no text"}) + "\n")
    with pytest.raises(ValueError, match=r"y.jsonl:1: no string field 'text'"):
        list(iter_documents([tmp_path / "y.jsonl"]))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        list(iter_documents([tmp_path / "missing.txt"]))


def test_cli_prepare_missing_tokenizer_is_one_line_error(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("hello")
    code = main(["data", "prepare", str(tmp_path / "a.txt"), "--out", str(tmp_path / "c"),
                 "--tokenizer", str(tmp_path / "none.json")])
    assert code == 2 and "none.json" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_cli_prepare_round_trip(tmp_path, tok):
    (tmp_path / "in").mkdir()
    for i in range(4):
        (tmp_path / "in" / f"{i}.txt").write_text(f"alpha beta {i}")
    assert main(["data", "prepare", str(tmp_path / "in"), "--out", str(tmp_path / "c"),
                 "--tokenizer", tok.path, "--val-every", "2"]) == 0
    meta = store.read_metadata(str(tmp_path / "c"))
    assert meta["splits"]["train"]["documents"] == 2 and meta["vocab_size"] == tok.vocab_size
    a = store.open_array(str(tmp_path / "c" / "train")).read().result()
    assert a.dtype == np.int32


def test_cli_tokenizer_trains_bpe_on_local_text(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("import os\nprint(os.getcwd())\n" * 50)
    assert main(["data", "tokenizer", str(tmp_path / "a.txt"), "--out", str(tmp_path / "t.json"),
                 "--vocab-size", "300"]) == 0
    assert "t.json" in capsys.readouterr().out and (tmp_path / "t.json").is_file()
