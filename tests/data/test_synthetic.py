import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp

from scaling_jax.data import synthetic
from scaling_jax.data.synthetic import MarkovMixture, SyntheticConfig, SyntheticWindows, unigram_entropy

REPO = Path(__file__).resolve().parents[2]

CFG = SyntheticConfig(vocab_size=32, n_sources=5, successors=3, seed=3)


def test_generation_is_random_access_and_splits_differ():
    m = MarkovMixture(CFG)
    batch = m.generate("train", np.array([4, 9, 1 << 40]), 20)
    assert np.array_equal(batch[1], m.generate("train", np.array([9]), 20)[0])
    assert np.array_equal(batch, MarkovMixture(CFG).generate("train", np.array([4, 9, 1 << 40]), 20))
    assert not np.array_equal(batch, m.generate("val", np.array([4, 9, 1 << 40]), 20))
    assert batch.dtype == np.int32 and batch.min() >= 0 and batch.max() < 32


def _posterior_predictive_loss(m, x):
    """Step by step: p(x_t | x_<t) = sum_k p(k | x_<t) P_k(x_t | x_t-1)."""
    def p_next(k, prev, nxt):
        return m.prob_KxVxS[k, prev][m.succ_KxVxS[k, prev] == nxt].sum()

    log_w = np.log(m.prior_K) + np.log([m.start_prob_KxS[k][m.start_KxS[k] == x[0]].sum() + 0.0
                                        for k in range(len(m.prior_K))])
    total = 0.0
    for t in range(1, len(x)):
        p_k = np.array([p_next(k, x[t - 1], x[t]) for k in range(len(m.prior_K))])
        w = np.exp(log_w - logsumexp(log_w))
        total -= np.log((w * p_k).sum())
        with np.errstate(divide="ignore"):
            log_w = log_w + np.log(p_k)
    return total / (len(x) - 1)


def test_bayes_loss_is_the_posterior_predictive_log_loss():
    m = MarkovMixture(CFG)
    x = m.generate("val", np.arange(4), 12)
    expected = [_posterior_predictive_loss(m, row) for row in x]
    np.testing.assert_allclose(m.bayes_loss(x), expected, rtol=1e-10)


def test_bayes_loss_is_far_below_unigram_entropy():
    src = SyntheticWindows(SyntheticConfig(), 64, "val", 32)
    x = src.read_batch(np.arange(32))
    assert src.mixture.bayes_loss(x).mean() < unigram_entropy(x[:, 1:]) - 2.0


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="vocab_size"):
        SyntheticConfig(vocab_size=0)


@pytest.mark.parametrize("field, value", [("vocab_size", 0), ("n_sources", -1), ("successors", 1.5),
                                          ("zipf_exponent", float("nan")), ("concentration", 0.0), ("seed", -1)])
def test_every_numeric_field_is_range_checked(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: must be "):
        SyntheticConfig(**{field: value})


def test_logsumexp_matches_scipy_including_minus_infinity():
    a = np.array([-np.inf, 3.0, 700.0, -np.inf, 699.5])
    assert synthetic.logsumexp(a) == pytest.approx(logsumexp(a), rel=1e-15)
    assert synthetic.logsumexp(np.full(3, -np.inf)) == -np.inf == logsumexp(np.full(3, -np.inf))


def test_synthetic_language_needs_no_scipy():
    """SciPy is only a test extra: the training data must work without it."""
    code = ("import sys; sys.modules['scipy'] = None\n"
            "import numpy as np\n"
            "from scaling_jax.data.synthetic import MarkovMixture, SyntheticConfig\n"
            "m = MarkovMixture(SyntheticConfig(vocab_size=16, n_sources=3, successors=2))\n"
            "print(m.bayes_loss(m.generate('val', np.arange(2), 8)).shape)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "(2,)"


def _dense_log_joint(m, x):
    """log π_k p_k(x_0..x_T) of every source from the tables, one source at a time."""
    out = []
    for k in range(len(m.prior_K)):
        lp = np.log(m.prior_K[k]) + np.log(m.start_prob_KxS[k][m.start_KxS[k] == x[0]].sum())
        for prev, nxt in zip(x[:-1], x[1:]):
            lp += np.log(m.prob_KxVxS[k, prev][m.succ_KxVxS[k, prev] == nxt].sum())
        out.append(lp)
    return np.array(out)


def test_joint_keeps_exactly_the_possible_sources():
    """The sparse posterior (the sources still possible, step by step) is the dense one without
    its zeros; a source listing a start token twice counts both entries."""
    m = MarkovMixture(SyntheticConfig(vocab_size=4, n_sources=40, successors=2, seed=1))
    assert (m.start_KxS[:, 0] == m.start_KxS[:, 1]).any()
    for x in m.generate("val", np.arange(30), 5):
        with np.errstate(divide="ignore"):
            dense = _dense_log_joint(m, x)
        ids, lj = m.joint(x)
        assert np.array_equal(ids, np.flatnonzero(np.isfinite(dense)))
        np.testing.assert_allclose(lj, dense[ids], rtol=1e-12)
        ids0, _ = m.start(int(x[0]))
        assert np.isin(ids, ids0).all() and len(ids0) < 40


def test_path_from_all_sources_or_some_with_weights():
    """A path over a subset keeps that subset's order and adds the given log weights; a token no
    source can emit leaves no source."""
    m = MarkovMixture(CFG)
    x = m.generate("val", np.arange(1), 9)[0]
    ids, lp = m.path(int(x[0]), x[1:])
    sub = ids[::2]
    ids2, lp2 = m.path(int(x[0]), x[1:], sub, np.full(len(sub), -1.0))
    assert np.array_equal(ids2, sub) and np.allclose(lp2, lp[::2] - 1.0)
    impossible = int(np.setdiff1d(np.arange(32), m.succ_KxVxS[:, x[-1]].ravel())[0])
    assert m.path(int(x[-1]), [impossible])[0].size == 0


def test_the_tables_of_a_corpus_are_drawn_once_per_process():
    cfg = SyntheticConfig(vocab_size=8, n_sources=7, seed=11)
    assert synthetic.mixture(cfg) is synthetic.mixture(SyntheticConfig(vocab_size=8, n_sources=7, seed=11))
    a, b = SyntheticWindows(cfg, 16, "train"), SyntheticWindows(cfg, 16, "val")
    assert a.mixture is b.mixture is synthetic.mixture(cfg)


def test_sources_names_the_source_that_wrote_each_document():
    m = MarkovMixture(SyntheticConfig(vocab_size=16, n_sources=6, successors=2, seed=5))
    idx = np.arange(40)
    k = m.sources("val", idx)
    x = m.generate("val", idx, 12)
    assert k.min() >= 0 and k.max() < 6 and len(set(k.tolist())) > 2
    for row, kb in zip(x, k):
        ids, _ = m.joint(row)
        assert kb in ids  # the writer can always have written its document
    long_docs = m.generate("val", idx, 80)
    assert [int(ids[np.argmax(lj)]) for ids, lj in map(m.joint, long_docs)] == k.tolist()
    with pytest.raises(ValueError, match="split 'test'"):
        m.sources("test", idx)


def test_impossible_documents_and_foreign_tokens():
    """A document no source can write has no finite Bayes loss (not a crash); a token outside the
    vocabulary is an error naming it; the shared tables are read-only."""
    m = MarkovMixture(SyntheticConfig(vocab_size=8, n_sources=1, successors=2, seed=0))
    never = next(t for t in range(8) if t not in m.start_KxS[0])
    assert m.start(never)[0].size == 0
    assert not np.isfinite(m.bayes_loss(np.array([[never, 1, 2]]))[0])
    assert synthetic.logsumexp(np.array([])) == -np.inf
    with pytest.raises(ValueError, match="token 8: outside the vocabulary"):
        m.start(8)
    with pytest.raises(ValueError, match="read-only"):
        m.prob_KxVxS[0, 0, 0] = 1.0
