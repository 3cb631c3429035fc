import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_jax.model.loss import lm_loss
from scaling_jax.model.transformer import Block, Transformer, _norm, _rotary_angles, attention_impl

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


BLOCK_PATHS = {"attn_norm", "wq_DxHxK", "wk_DxHxK", "wv_DxHxK", "q_norm", "k_norm", "wo_HxKxD",
               "ffn_norm", "w1_DxF", "w2_DxF", "w3_FxD"}  # the checkpoints' layout: do not rename


@pytest.fixture(scope="module")
def block(model):
    return Block(model.cfg, 0, rngs=nnx.Rngs(1))


def _h(block, seed=0):
    cfg = block.cfg
    return jax.random.normal(jax.random.key(seed), (2, cfg.seq_len, cfg.d_model), jnp.float32)


def test_block_parameter_paths_are_unchanged(block, model):
    assert {path for path, _ in nnx.to_flat_state(nnx.state(block))} == {(p,) for p in BLOCK_PATHS}
    no_qk = Block(dataclasses.replace(model.cfg, qk_norm=False), 0, rngs=nnx.Rngs(1))
    no_qk_paths = {path for path, _ in nnx.to_flat_state(nnx.state(no_qk))}
    assert no_qk_paths == {(p,) for p in BLOCK_PATHS - {"q_norm", "k_norm"}}
    stacked = {path for path, _ in nnx.to_flat_state(nnx.state(model)) if path[0] == "blocks"}
    assert stacked == {("blocks", p) for p in BLOCK_PATHS}


def test_attention_is_causal(block):
    h_BxLxD = _h(block)
    rope = _rotary_angles(block.cfg, h_BxLxD.shape[1])
    attend = jax.jit(lambda h: block.attention(h, rope))
    ref_BxLxD = attend(h_BxLxD)
    assert ref_BxLxD.shape == h_BxLxD.shape
    for p in (0, 5, h_BxLxD.shape[1] - 1):
        out_BxLxD = attend(h_BxLxD.at[:, p].add(1.0))
        np.testing.assert_array_equal(out_BxLxD[:, :p], ref_BxLxD[:, :p])
        assert not np.allclose(out_BxLxD[:, p:], ref_BxLxD[:, p:])


def test_swiglu_equals_hand_computation(block):
    h = np.asarray(_h(block, 1), np.float64)
    w1, w2, w3 = (np.asarray(w[...], np.float64) for w in (block.w1_DxF, block.w2_DxF, block.w3_FxD))
    gate = h @ w1
    want = (gate / (1 + np.exp(-gate)) * (h @ w2)) @ w3
    np.testing.assert_allclose(block.swiglu(_h(block, 1)), want, rtol=1e-4, atol=1e-5)


def test_block_is_attention_then_swiglu_with_residuals(block):
    x = _h(block, 2)
    rope = _rotary_angles(block.cfg, x.shape[1])
    eps = block.cfg.norm_eps
    mid = x + block.attention(_norm(x, block.attn_norm[...], eps), rope)
    np.testing.assert_array_equal(block(x, rope), mid + block.swiglu(_norm(mid, block.ffn_norm[...], eps)))


def test_implicit_rank_promotion_raises_here():
    """The folder's conftest turns on JAX's guard against silent broadcasting across ranks."""
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion='raise'"):
        jnp.ones((2, 3)) + jnp.ones(3)
    assert (jnp.ones((2, 3)) + jnp.ones(3)[None, :]).shape == (2, 3)  # explicit broadcasting is fine


def test_auto_attention_is_cudnn_only_on_gpu_for_16_bit(monkeypatch):
    q = lambda K, dtype: jnp.zeros((1, 4, 2, K), dtype)  # noqa: E731
    assert attention_impl("auto", q(72, jnp.bfloat16)) is None  # this CPU: XLA's attention
    assert attention_impl("xla", q(72, jnp.bfloat16)) == "xla"
    from scaling_jax.model import transformer

    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(transformer, "_compute_capability", lambda: 7.0)
    assert attention_impl("auto", q(72, jnp.bfloat16)) is None  # pre-Ampere: no fused kernel
    monkeypatch.setattr(transformer, "_compute_capability", lambda: 9.0)
    assert attention_impl("auto", q(72, jnp.bfloat16)) == "cudnn"
    assert attention_impl("auto", q(64, jnp.float16)) == "cudnn"
    assert attention_impl("auto", q(72, jnp.float32)) is None  # cuDNN's fused kernel is 16-bit only
    assert attention_impl("auto", q(12, jnp.bfloat16)) is None  # head width not a multiple of 8
    assert attention_impl("auto", q(256, jnp.bfloat16)) is None
