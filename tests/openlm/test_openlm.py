"""OpenLM checkpoints in our model: a PyTorch model with OpenLM's names and forward rules
(tests/openlm/reference.py), randomly initialised, imported through the CLI; our logits,
evaluator log-probabilities and a round trip through export must match it."""

from __future__ import annotations

import copy
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from scaling_jax.cli import main  # noqa: E402
from scaling_jax.errors import UserError  # noqa: E402
from scaling_jax.model.config import load_model_config  # noqa: E402
from scaling_jax.openlm import convert  # noqa: E402
from scaling_jax.openlm.io import read_state_dict  # noqa: E402
from scaling_jax.train.lm import load_run  # noqa: E402
from tests.openlm.reference import OpenLMReference  # noqa: E402

# (preset, overrides, reference size, positional, how the file wraps its names)
SIZES = {
    "small": ("tiny_d32", ["dtype=float32"], dict(d=32, n_layers=2, n_heads=2, vocab=512), "rotary", "fsdp"),
    "small_head_rotary": ("tiny_d32", ["dtype=float32"], dict(d=32, n_layers=2, n_heads=2, vocab=512),
                          "head_rotary", "bare"),
    "d96": ("d=96_l=8_h=4", ["dtype=float32"], dict(d=96, n_layers=8, n_heads=4, vocab=50432), "rotary", "ddp"),
}


def _write_pt(ref: OpenLMReference, path: Path, wrap: str) -> None:
    """Save as OpenLM does: a training checkpoint whose names FSDP or DDP prefixed, or a bare state dict."""
    sd = ref.state_dict()
    if wrap == "bare":
        torch.save(sd, path)
        return
    prefix = {"fsdp": "_fsdp_wrapped_module.", "ddp": "module."}[wrap]
    torch.save({"epoch": 3, "name": "ref", "state_dict": {prefix + k: v for k, v in sd.items()}}, path)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Per size: (torch reference, .pt path, imported run folder, our loaded run), built on first use."""
    cache = {}

    def get(size: str):
        if size not in cache:
            model, overrides, dims, positional, wrap = SIZES[size]
            root = tmp_path_factory.mktemp(size)
            ref = OpenLMReference(**dims, head_rotary=positional == "head_rotary", seed=len(cache))
            _write_pt(ref, root / "ref.pt", wrap)
            args = ["import-openlm", str(root / "ref.pt"), "--model", model, "--out", str(root / "run"),
                    "--positional", positional] + [a for o in overrides for a in ("-o", o)]
            assert main(args) == 0
            cache[size] = (ref, root / "ref.pt", root / "run", load_run(root / "run"))
        return cache[size]

    return get


def _our_logits(run, tokens_BxL: np.ndarray) -> np.ndarray:
    lm = run.lm
    with jax.set_mesh(lm.mesh):
        return np.asarray(jax.jit(lm.apply)(lm.params, tokens_BxL))


@pytest.mark.parametrize("size", list(SIZES))
def test_imported_logits_equal_the_reference(imported, size):
    ref, _, _, run = imported(size)
    vocab = SIZES[size][2]["vocab"]
    tokens_BxL = np.random.default_rng(1).integers(0, vocab, (2, 48)).astype(np.int32)
    want = ref(torch.from_numpy(tokens_BxL).long()).numpy()
    got = _our_logits(run, tokens_BxL)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_head_rotary_is_not_rotary(imported, tmp_path):
    """The flag matters: the head_rotary checkpoint read as rotary gives other logits."""
    ref, pt, _, _ = imported("small_head_rotary")
    assert main(["import-openlm", str(pt), "--model", "tiny_d32", "--out", str(tmp_path / "run"),
                 "-o", "dtype=float32"]) == 0
    tokens_BxL = np.random.default_rng(2).integers(0, 512, (1, 32)).astype(np.int32)
    want = ref(torch.from_numpy(tokens_BxL).long()).numpy()
    assert np.abs(_our_logits(load_run(tmp_path / "run"), tokens_BxL) - want).max() > 1e-2


def test_evaluator_logprobs_equal_the_reference(imported):
    """Per-example continuation log-probabilities through the evaluator's scorer equal the reference's."""
    from scaling_jax.eval.batching import make_batch
    from scaling_jax.eval.score import scorer_for

    ref, _, _, run = imported("d96")
    rng = np.random.default_rng(3)
    rows = []
    for item, (n, start) in enumerate([(20, 15), (33, 30), (9, 4), (40, 1)]):  # (tokens, continuation start)
        rows.append((rng.integers(0, 50432, n).astype(np.int32), start, item, 0))
    batch = make_batch(rows, n_rows=4, length=48)
    logprob, _, _ = scorer_for(run.lm)(batch)
    for (tokens, start, item, _), got in zip(rows, logprob):
        logp = torch.log_softmax(ref(torch.from_numpy(tokens[None, :-1]).long())[0], dim=-1).numpy()
        want = sum(logp[i - 1, tokens[i]] for i in range(start, len(tokens)))
        assert got == pytest.approx(want, rel=1e-4, abs=1e-3), item


def test_export_then_import_is_the_identity(imported, tmp_path):
    _, pt, run_dir, run = imported("small")
    assert main(["export-openlm", str(run_dir), "--out", str(tmp_path / "out.pt")]) == 0
    original, exported = read_state_dict(pt), read_state_dict(tmp_path / "out.pt")
    assert sorted(exported) == sorted(original)
    for k in original:
        np.testing.assert_array_equal(exported[k], original[k], err_msg=k)
    cfg = yaml.safe_load((tmp_path / "out.json").read_text())
    assert (cfg["hidden_dim"], cfg["n_layers"], cfg["n_heads"], cfg["vocab_size"]) == (32, 2, 2, 512)
    assert main(["import-openlm", str(tmp_path / "out.pt"), "--model", "tiny_d32", "--out", str(tmp_path / "again"),
                 "-o", "dtype=float32"]) == 0
    again = load_run(tmp_path / "again")
    for a, b in zip(jax.tree.leaves(run.lm.params), jax.tree.leaves(again.lm.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_unscanned_layout_converts_the_same(imported):
    """scan_layers=false keeps one state per block; the conversion fills and reads it alike."""
    _, pt, _, _ = imported("small")
    cfg = load_model_config("tiny_d32", {"scan_layers": False})
    flat = convert.to_flat(read_state_dict(pt), cfg, "ref.pt")
    back = convert.from_state(convert.to_state(flat, cfg))
    assert sorted(back) == sorted(flat)
    for k in flat:
        np.testing.assert_array_equal(back[k], flat[k], err_msg=k)


@pytest.mark.parametrize("change, named", [
    ("missing", "layers.1.feed_forward.w3.weight"),
    ("extra", "layers.0.attention_norm.bias"),
    ("shape", "layers.0.attention.in_proj.weight"),
    ("freq", "layers.0.attention.pos_embed.inv_freq"),
])
def test_a_bad_state_dict_is_refused_naming_the_tensor(imported, change, named):
    _, pt, _, _ = imported("small")
    sd = dict(read_state_dict(pt))
    if change == "missing":
        del sd[named]
    elif change == "extra":
        sd[named] = np.zeros(32, np.float32)
    elif change == "shape":
        sd[named] = sd[named][:-1]
    else:
        sd[named] = sd[named] * 2
    with pytest.raises(UserError, match=named.replace(".", r"\.")):
        convert.to_flat(sd, load_model_config("tiny_d32"), "ref.pt")


def test_cli_refuses_the_wrong_model_naming_file_and_tensor(imported, tmp_path, capsys):
    _, pt, _, _ = imported("small")
    assert main(["import-openlm", str(pt), "--model", "tiny_d64", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"{pt}: tensor tok_embeddings.weight has shape (512, 32)" in err and "expects (512, 64)" in err
    assert not (tmp_path / "x").exists()
    assert main(["import-openlm", str(tmp_path / "none.pt"), "--model", "tiny_d32", "--out", str(tmp_path / "y")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


TRAIN = {
    "model": {"name": "tiny_d32", "set": {"dtype": "float32", "seq_len": 32}},
    "data": {"corpus": {"kind": "synthetic", "synthetic": {"vocab_size": 64, "n_sources": 4, "successors": 4}},
             "val_sequences": 8},
    "optimizer": {"warmup": 0},
    "budget": {"tokens": 8 * 32, "global_batch": 8},
    "logging": {"progress": False, "tensorboard": False},
}


def test_init_from_gives_the_imported_parameters_and_a_fresh_optimizer(imported):
    """What ``train --init-from`` starts from (train/loop.py: restore_params, then start_from)."""
    from scaling_jax.model.sharding import make_mesh
    from scaling_jax.train.checkpoint import param_shapes
    from scaling_jax.train.config import TrainConfig, model_config
    from scaling_jax.train.lm import restore_params
    from scaling_jax.train.optimizer import optimizer
    from scaling_jax.train.step import setup

    _, _, run_dir, run = imported("small")
    cfg = TrainConfig(model=run.config.model)
    mesh = make_mesh(1, 1, 1)
    s = setup(model_config(cfg), optimizer(cfg.optimizer, cfg.optimizer.warmup + 1), mesh, seed=0)
    with jax.set_mesh(mesh):
        params, step = restore_params(run_dir, s, param_shapes(s.abstract_state["params"]))
        state = s.start_from(params)
    assert step == 0 and int(state["step"]) == 0
    for a, b in zip(jax.tree.leaves(run.lm.params), jax.tree.leaves(state["params"])):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    moments = [x for x in jax.tree.leaves(state["opt_state"]) if np.ndim(x)]
    assert len(moments) == 2 * len(jax.tree.leaves(params)) and not any(np.any(np.asarray(m)) for m in moments)


def test_train_refuses_init_from_with_resume_and_resuming_an_import(imported, tmp_path, capsys):
    _, _, run_dir, _ = imported("small")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(copy.deepcopy(TRAIN)))
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "a"), "--resume",
                 "--init-from", str(run_dir)]) == 2
    assert "pass one of them" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(run_dir), "--resume"]) == 2
    assert "holds parameters only" in capsys.readouterr().err


def test_tokenizer_is_recorded_for_eval(imported, tmp_path, capsys):
    """--tokenizer lands in the run's eval.tokenizer, which eval's tokenizer lookup reads; one with
    more ids than the model's embedding rows is refused."""
    from scaling_jax.data.tokenizer import train_bpe
    from scaling_jax.train.lm import run_tokenizer

    _, pt, _, _ = imported("small")
    texts = ["the quick brown fox jumps over the lazy dog"] * 50
    train_bpe(texts, 300, tmp_path / "tok.json")
    assert main(["import-openlm", str(pt), "--model", "tiny_d32", "--tokenizer", str(tmp_path / "tok.json"),
                 "--out", str(tmp_path / "run")]) == 0
    run = load_run(tmp_path / "run")
    assert run.config.eval.tokenizer == str((tmp_path / "tok.json").resolve())
    assert run_tokenizer(run.config, 512).encode_batch(["the fox"]) == [train_bpe(texts, 300, tmp_path / "t2.json")
                                                                        .encode_batch(["the fox"])[0]]
    assert main(["import-openlm", str(pt), "--model", "tiny_d32", "-o", "vocab_size=256", "--tokenizer",
                 str(tmp_path / "tok.json"), "--out", str(tmp_path / "small_vocab")]) == 2
    assert "do not fit" in capsys.readouterr().err
