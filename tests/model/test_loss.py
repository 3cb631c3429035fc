import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_jax.model.loss import lm_loss


@nnx.jit(static_argnames=("vocab_chunk",))
def loss_aux_grads(model, tokens, mask, vocab_chunk=None):
    fn = lambda m: lm_loss(m, tokens[:, :-1], tokens[:, 1:], vocab_chunk=vocab_chunk, mask_BxL=mask)
    return nnx.value_and_grad(fn, has_aux=True)(model)


def test_matches_a_direct_computation(model, tokens):
    mask = jnp.ones(tokens[:, 1:].shape).at[0, 5:].set(0.0)
    (loss, aux), _ = loss_aux_grads(model, tokens, mask)
    logits = np.asarray(nnx.jit(lambda m, t: m(t))(model, tokens[:, :-1]), np.float64)
    lse = np.log(np.exp(logits).sum(-1))
    ce = lse - np.take_along_axis(logits, np.asarray(tokens[:, 1:])[..., None], -1)[..., 0]
    m = np.asarray(mask)
    np.testing.assert_allclose(aux["ce"], (ce * m).sum() / m.sum(), rtol=1e-5)
    np.testing.assert_allclose(aux["z_loss"], 1e-4 * (lse**2 * m).sum() / m.sum(), rtol=1e-5)
    np.testing.assert_allclose(loss, aux["ce"] + aux["z_loss"], rtol=1e-6)
    np.testing.assert_allclose(aux["ce_per_seq_B"], (ce * m).sum(1) / m.sum(1), rtol=1e-5)


@pytest.mark.parametrize("chunk", [32, 97])  # 32 does not divide 97: the last chunk is padded
def test_chunked_equals_full(model, tokens, chunk):
    mask = jnp.ones(tokens[:, 1:].shape)
    (l0, a0), g0 = loss_aux_grads(model, tokens, mask)
    (l1, a1), g1 = loss_aux_grads(model, tokens, mask, vocab_chunk=chunk)
    np.testing.assert_allclose(l1, l0, rtol=1e-6)
    np.testing.assert_allclose(a1["ce_per_seq_B"], a0["ce_per_seq_B"], rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g0, g1)


def test_bad_chunk_is_an_error(model, tokens):
    with pytest.raises(ValueError, match="vocab_chunk: must be positive"):
        lm_loss(model, tokens[:, :-1], tokens[:, 1:], vocab_chunk=0)
