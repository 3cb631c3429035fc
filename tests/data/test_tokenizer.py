import pytest

from scaling_jax.data.tokenizer import EOD_TOKEN, load_tokenizer, padded_vocab_size, train_bpe

TEXTS = ["def add(a, b):\n    return a + b\n", "class Point:\n    x: int = 0\n"] * 20


def test_train_bpe_round_trips_and_has_eod(tmp_path):
    tok = train_bpe(TEXTS, 300, tmp_path / "tok.json")
    assert tok.vocab_size <= 300 and tok.hf.id_to_token(tok.eod_id) == EOD_TOKEN
    ids = tok.encode_batch(["def add(x):\n    return x\n"])[0]
    assert tok.decode(ids) == "def add(x):\n    return x\n"
    assert load_tokenizer(tmp_path / "tok.json").vocab_size == tok.vocab_size


def test_padded_vocab_size():
    assert padded_vocab_size(50277, 256) == 50432  # GPT-NeoX's embedding rows
    assert padded_vocab_size(512, 128) == 512
    with pytest.raises(ValueError):
        padded_vocab_size(0)


def test_missing_or_bad_tokenizer_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_tokenizer(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json: not a valid tokenizer.json"):
        load_tokenizer(bad)
