import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_jax.model.loss import lm_loss
from scaling_jax.model.transformer import Transformer

forward = nnx.jit(lambda model, tokens: model(tokens))


@nnx.jit
def loss_and_grads(model, tokens):
    return nnx.value_and_grad(lambda m: lm_loss(m, tokens[:, :-1], tokens[:, 1:])[0])(model)


def variant(model, **changes):
    """The same weights under a changed config (dtype, remat; same layout)."""
    out = nnx.eval_shape(lambda: Transformer(dataclasses.replace(model.cfg, **changes), rngs=nnx.Rngs(0)))
    nnx.update(out, nnx.state(model))
    return out


def unrolled(model, **changes):
    """The same weights in the unrolled layout (a list of blocks, no stacked 'layers' axis)."""
    cfg = dataclasses.replace(model.cfg, scan_layers=False, **changes)
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


def test_shapes_dtype_and_length_check(model, tokens):
    B, L, V = tokens.shape[0], model.cfg.seq_len, model.cfg.vocab_size
    logits = forward(model, tokens[:, :L])
    assert logits.shape == (B, L, V) and logits.dtype == jnp.float32
    with pytest.raises(ValueError, match=f"exceeds seq_len={L}"):
        model.hidden(tokens)


def test_causal(model, tokens):
    inputs, V = tokens[:, :-1], model.cfg.vocab_size
    ref = forward(model, inputs)
    for p in (0, 7, inputs.shape[1] - 1):
        out = forward(model, inputs.at[:, p].set((inputs[:, p] + 1) % V))
        np.testing.assert_array_equal(out[:, :p], ref[:, :p])
        assert not np.allclose(out[:, p], ref[:, p])


def test_every_param_names_its_axes(model):
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        names = var.get_metadata().get("out_sharding")
        assert names is not None and len(names) == var[...].ndim, (path, names)
        assert (names[0] == "layers") == (path[0] == "blocks"), (path, names)


def test_initial_loss_is_near_uniform(model, tokens):
    loss, _ = loss_and_grads(model, tokens)
    # logits start with std ~1 (head std 1/sqrt(d) on unit-variance features): CE ~ log V + 1/2
    assert 0 < float(loss) - np.log(model.cfg.vocab_size) < 1.5


def test_bf16_close_to_f32(model, tokens):
    bf16 = variant(model, dtype="bfloat16")
    assert bf16.embed_VxD[...].dtype == jnp.float32  # master weights stay float32
    np.testing.assert_allclose(forward(bf16, tokens[:, :-1]), forward(model, tokens[:, :-1]), atol=0.1)
    (l32, g32), (l16, g16) = loss_and_grads(model, tokens), loss_and_grads(bf16, tokens)
    assert abs(float(l16) - float(l32)) < 0.01 * float(l32)
    for a, b in zip(jax.tree.leaves(g32), jax.tree.leaves(g16)):
        a, b = a.ravel(), b.ravel()
        assert float(jnp.dot(a, b) / jnp.linalg.norm(a) / jnp.linalg.norm(b)) > 0.99


def _assert_same(loss_grads_a, loss_grads_b, rtol):
    (la, ga), (lb, gb) = loss_grads_a, loss_grads_b
    np.testing.assert_allclose(lb, la, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-7), ga, gb)


@pytest.mark.parametrize("remat", ["block", "dots"])
def test_remat_same_loss_and_grads(model, tokens, remat):
    _assert_same(loss_and_grads(model, tokens), loss_and_grads(variant(model, remat=remat), tokens), 1e-5)


def test_scan_same_loss_and_grads_as_unrolled(model, tokens):
    plain = unrolled(model)
    np.testing.assert_allclose(forward(plain, tokens[:, :-1]), forward(model, tokens[:, :-1]), rtol=1e-5, atol=1e-5)
    (loss, grads), (scan_loss, scan_grads) = loss_and_grads(plain, tokens), loss_and_grads(model, tokens)
    np.testing.assert_allclose(loss, scan_loss, rtol=1e-6)
    flat = dict(nnx.to_flat_state(grads))
    for path, g in nnx.to_flat_state(scan_grads):
        if path[0] == "blocks":
            want = jnp.stack([flat[(path[0], i, *path[1:])][...] for i in range(model.cfg.n_layers)])
        else:
            want = flat[path][...]
        np.testing.assert_allclose(want, g[...], rtol=1e-4, atol=1e-6, err_msg=str(path))


def test_remat_unrolled_same_as_plain(model, tokens):
    _assert_same(loss_and_grads(unrolled(model), tokens), loss_and_grads(unrolled(model, remat="block"), tokens), 1e-5)
