import numpy as np
import pytest

from scaling_jax.data.pipeline import CorpusConfig, TokenWindows, batches, open_source
from scaling_jax.data.prepare import prepare
from scaling_jax.data.tokenizer import train_bpe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    tok = train_bpe(["alpha beta gamma delta epsilon"] * 20, 300, root / "tokenizer.json")
    docs = [f"alpha {i} beta {i * i} gamma delta" for i in range(200)]
    prepare(iter(docs), tok, str(root / "c"), val_every=10, chunk=64)
    return str(root / "c")


def _take(it, n):
    return [next(it) for _ in range(n)]


def test_windows_overlap_by_one_token(corpus):
    src = TokenWindows(corpus, "train", 8)
    a, b = src.read_batch([0, 1])
    assert a.shape == (9,) and a[-1] == b[0]


def test_processes_split_each_global_batch(corpus):
    src = open_source(CorpusConfig(kind="tokens", path=corpus), "train", 8)
    whole = _take(iter(batches(src, global_batch=8, seed=1)), 5)
    parts = [_take(iter(batches(src, global_batch=8, seed=1, process_index=p, process_count=2)), 5)
             for p in range(2)]
    for step in range(5):
        np.testing.assert_array_equal(np.concatenate([parts[0][step], parts[1][step]]), whole[step])


def test_iterator_state_resumes_exactly(corpus):
    src = open_source(CorpusConfig(kind="tokens", path=corpus), "train", 8)
    ds = batches(src, global_batch=4, seed=2)
    it = iter(ds)
    _take(it, 3)
    state = it.get_state()
    expected = _take(it, 4)
    it2 = iter(ds)
    it2.set_state(state)
    for a, b in zip(expected, _take(it2, 4)):
        np.testing.assert_array_equal(a, b)


def test_epochs_reshuffle_and_cover_every_window(corpus):
    src = TokenWindows(corpus, "train", 8)
    n = len(src)
    order = [b[:, 0].tolist() for b in _take(iter(batches(src, global_batch=1, seed=0)), 2 * n)]
    first = [src.read_batch([i])[0, 0] for i in range(n)]
    assert sorted(sum(order[:n], [])) == sorted(first)
    assert order[:n] != order[n:]


def test_corpus_shorter_than_one_sequence_names_array(corpus):
    with pytest.raises(ValueError, match=r"c/val: \d+ tokens, fewer than one sequence of seq_len \+ 1 = 100001"):
        TokenWindows(corpus, "val", 100_000)


def test_validation_stops_after_whole_batches():
    src = open_source(CorpusConfig(), "val", 8, n_windows=10)
    got = list(batches(src, global_batch=4, seed=0, shuffle=False, repeat=False))
    assert len(got) == 2 and got[0].shape == (4, 9)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        batches(src, global_batch=16, seed=0, shuffle=False, repeat=False)
