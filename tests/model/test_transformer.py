import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_jax.model.config import load_model_config
from scaling_jax.model.loss import lm_loss
from scaling_jax.model.transformer import Transformer

B, L, V = 2, 16, 97
CFG = load_model_config("tiny_d32", ["n_layers=2", f"vocab_size={V}", f"seq_len={L}"])
TOKENS = jax.random.randint(jax.random.key(0), (B, L + 1), 0, V)

forward = nnx.jit(lambda model, tokens: model(tokens))


@nnx.jit
def loss_and_grads(model, tokens):
    return nnx.value_and_grad(lambda m: lm_loss(m, tokens[:, :-1], tokens[:, 1:])[0])(model)


@pytest.fixture(scope="module")
def model():
    """One initialised model (scan layout); variants reuse its weights (init compiles slowly)."""
    return nnx.jit(lambda: Transformer(CFG, rngs=nnx.Rngs(0)))()


def variant(model, **changes):
    """The same weights under a changed config (dtype, remat); layout must match."""
    out = nnx.eval_shape(lambda: Transformer(dataclasses.replace(CFG, **changes), rngs=nnx.Rngs(0)))
    nnx.update(out, nnx.state(model))
    return out


def unrolled(model, **changes):
    """The same weights in the unrolled layout (a list of blocks, no stacked 'layers' axis)."""
    cfg = dataclasses.replace(CFG, scan_layers=False, **changes)
    out = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
    stacked = dict(nnx.to_flat_state(nnx.state(model)))
    flat = []
    for path, var in nnx.to_flat_state(nnx.state(out)):
        if path[0] == "blocks":  # ('blocks', i, name) <- ('blocks', name)[i]
            flat.append((path, var.replace(stacked[(path[0], *path[2:])][...][path[1]])))
        else:
            flat.append((path, var.replace(stacked[path][...])))
    nnx.update(out, nnx.from_flat_state(flat))
    return out


def test_shapes_dtype_and_length_check(model):
    logits = forward(model, TOKENS[:, :L])
    assert logits.shape == (B, L, V) and logits.dtype == jnp.float32
    with pytest.raises(ValueError, match="exceeds seq_len=16"):
        model.hidden(TOKENS)


def test_causal(model):
    tokens = TOKENS[:, :L]
    ref = forward(model, tokens)
    for p in (0, 7, L - 1):
        out = forward(model, tokens.at[:, p].set((tokens[:, p] + 1) % V))
        np.testing.assert_array_equal(out[:, :p], ref[:, :p])
        assert not np.allclose(out[:, p], ref[:, p])


def test_every_param_names_its_axes(model):
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        names = var.get_metadata().get("out_sharding")
        assert names is not None and len(names) == var[...].ndim, (path, names)
        assert (names[0] == "layers") == (path[0] == "blocks"), (path, names)


def test_initial_loss_is_near_uniform(model):
    loss, _ = loss_and_grads(model, TOKENS)
    assert abs(float(loss) - np.log(V)) < 0.5


def test_bf16_close_to_f32(model):
    bf16 = variant(model, dtype="bfloat16")
    assert bf16.embed_VxD[...].dtype == jnp.float32  # master weights stay float32
    np.testing.assert_allclose(forward(bf16, TOKENS[:, :L]), forward(model, TOKENS[:, :L]), atol=0.1)
    (l32, g32), (l16, g16) = loss_and_grads(model, TOKENS), loss_and_grads(bf16, TOKENS)
    assert abs(float(l16) - float(l32)) < 0.01 * float(l32)
    for a, b in zip(jax.tree.leaves(g32), jax.tree.leaves(g16)):
        a, b = a.ravel(), b.ravel()
        assert float(jnp.dot(a, b) / jnp.linalg.norm(a) / jnp.linalg.norm(b)) > 0.99


def _assert_same(loss_grads_a, loss_grads_b, rtol):
    (la, ga), (lb, gb) = loss_grads_a, loss_grads_b
    np.testing.assert_allclose(lb, la, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-7), ga, gb)


@pytest.mark.parametrize("remat", ["block", "dots"])
def test_remat_same_loss_and_grads(model, remat):
    _assert_same(loss_and_grads(model, TOKENS), loss_and_grads(variant(model, remat=remat), TOKENS), 1e-5)


def test_scan_same_loss_and_grads_as_unrolled(model):
    plain = unrolled(model)
    np.testing.assert_allclose(forward(plain, TOKENS[:, :L]), forward(model, TOKENS[:, :L]), rtol=1e-5, atol=1e-5)
    loss, grads = loss_and_grads(plain, TOKENS)
    scan_loss, scan_grads = loss_and_grads(model, TOKENS)
    np.testing.assert_allclose(loss, scan_loss, rtol=1e-6)
    flat = dict(nnx.to_flat_state(grads))
    for path, g in nnx.to_flat_state(scan_grads):
        if path[0] == "blocks":
            want = jnp.stack([flat[(path[0], i, *path[1:])][...] for i in range(CFG.n_layers)])
        else:
            want = flat[path][...]
        np.testing.assert_allclose(want, g[...], rtol=1e-4, atol=1e-6, err_msg=str(path))


def test_remat_unrolled_same_as_plain(model):
    _assert_same(loss_and_grads(unrolled(model), TOKENS), loss_and_grads(unrolled(model, remat="block"), TOKENS), 1e-5)
