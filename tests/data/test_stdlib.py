from scaling_jax.data import stdlib, store
from scaling_jax.data.pipeline import TokenWindows


def test_stdlib_corpus_builds_from_local_sources(tmp_path):
    files = stdlib.stdlib_files()
    assert len(files) > 100 and all(f.suffix == ".py" for f in files)
    meta = stdlib.build(tmp_path, vocab_size=512, val_every=5, max_files=15)
    assert meta["splits"]["val"]["documents"] == 3 and meta["splits"]["train"]["documents"] == 12
    assert (tmp_path / "tokenizer.json").is_file() and meta["vocab_size"] <= 512
    windows = TokenWindows(str(tmp_path), "train", 64)
    assert len(windows) > 10 and windows.read_batch([0]).max() < meta["vocab_size"]
    assert store.read_metadata(str(tmp_path))["source"].startswith("python stdlib")
