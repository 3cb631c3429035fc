import pytest

from scaling_jax.config import ConfigError
from scaling_jax.train.config import budget, load_train_config, model_config
from scaling_jax.train.optimizer import decay_mask, schedule


def test_budget_from_multiplier_and_tokens(tiny_yaml):
    cfg = load_train_config(tiny_yaml, ["budget.tokens=null", "budget.multiplier=0.5"])
    b = budget(cfg, N=10_000, seq_len=16)
    assert b.D == 5_000 and b.steps == round(5_000 / (8 * 16)) and b.M == 0.5
    b = budget(load_train_config(tiny_yaml), N=10_000, seq_len=16)
    assert b.steps == 20 and b.tokens_trained == 2560


def test_budget_below_one_step_names_field(tiny_yaml):
    cfg = load_train_config(tiny_yaml, ["budget.tokens=10"])
    with pytest.raises(ConfigError, match="budget: D = 10 tokens is less than one step"):
        budget(cfg, N=10_000, seq_len=16)


def test_unknown_key_and_wrong_type_name_file_and_field(tiny_yaml):
    with pytest.raises(ConfigError, match=r"tiny\.yaml\.optimizer: unknown key\(s\) \['learning_rate'\]"):
        load_train_config(tiny_yaml, ["optimizer.learning_rate=1"])
    with pytest.raises(ConfigError, match=r"tiny\.yaml\.budget\.global_batch: expected an integer"):
        load_train_config(tiny_yaml, ["budget.global_batch=eight"])
    with pytest.raises(ConfigError, match="model"):
        model_config(load_train_config(tiny_yaml, ["model.set.d_modle=3"]))


def test_schedule_warmup_peak_and_cooldown(tiny_yaml):
    cfg = load_train_config(tiny_yaml)
    lr = schedule(cfg.optimizer, 20)
    assert float(lr(0)) == 0.0
    assert float(lr(2)) == pytest.approx(3e-3)
    assert float(lr(20)) == pytest.approx(3e-5)
    with pytest.raises(ConfigError, match="optimizer.warmup"):
        schedule(cfg.optimizer, 2)


def test_decay_mask_skips_norm_gains():
    mask = decay_mask({"blocks": {"attn_norm": 0, "q_norm": 0, "w3_FxD": 0}, "final_norm": 0, "head_DxV": 0})
    assert mask == {"blocks": {"attn_norm": False, "q_norm": False, "w3_FxD": True},
                    "final_norm": False, "head_DxV": True}


PAPER_CONFIGS = {"d96": "d=96_l=8_h=4", "d512": "d=512_l=8_h=4", "d576": "d=576_l=24_h=8",
                 "d1024": "d=1024_l=24_h=8", "open_lm_1b": "open_lm_1b", "open_lm_7b": "open_lm_7b"}


@pytest.mark.parametrize("config", sorted(PAPER_CONFIGS))
def test_paper_configs_match_the_testbed(config, testbed_dir):
    import json

    from scaling_jax.model.counts import paper_params
    from tests.train.conftest import REPO

    cfg = load_train_config(REPO / "configs" / "train" / f"{config}.yaml")
    run = json.loads((testbed_dir / "models" / f"c4_original-{PAPER_CONFIGS[config]}-1.0.json").read_text())
    hp = run["hyperparameters"]
    mc = model_config(cfg)
    b = budget(cfg, paper_params(mc), mc.seq_len)
    assert b.N == hp["params"] and b.D == pytest.approx(hp["tokens"], rel=1e-9)
    o = cfg.optimizer
    assert (o.lr, o.weight_decay, o.cooldown_lr, o.warmup) == (hp["lr"], hp["wd"], hp["cd"], hp["warmup"])
    if config != "open_lm_7b":  # the testbed lists global_bs 1 for the 7B run
        assert cfg.budget.global_batch == hp["global_bs"]


BAD_VALUES = [  # (override, the dotted field the message must name)
    ("logging.every=0", "logging.every: must be an integer >= 1, got 0"),
    ("logging.val_every=-1", "logging.val_every: must be an integer >= 0"),
    ("optimizer.lr=.nan", "optimizer.lr: must be a finite number > 0, got nan"),
    ("optimizer.lr=0", "optimizer.lr: must be a finite number > 0"),
    ("optimizer.cooldown_lr=-1e-5", "optimizer.cooldown_lr: must be a finite number >= 0"),
    ("optimizer.warmup=-1", "optimizer.warmup: must be an integer >= 0"),
    ("optimizer.b1=1", "optimizer.b1: must be a finite number in [0, 1)"),
    ("optimizer.b2=-0.5", "optimizer.b2: must be a finite number in [0, 1)"),
    ("optimizer.eps=0", "optimizer.eps: must be a finite number > 0"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay: must be a finite number >= 0"),
    ("optimizer.clip=.inf", "optimizer.clip: must be a finite number > 0, got inf"),
    ("optimizer.z_loss=-1", "optimizer.z_loss: must be a finite number >= 0"),
    ("checkpoint.every=-5", "checkpoint.every: must be an integer >= 1, got -5"),
    ("checkpoint.keep=0", "checkpoint.keep: must be an integer >= 1, got 0"),
    ("data.threads=0", "data.threads: must be an integer >= 1, got 0"),
    ("data.prefetch=-1", "data.prefetch: must be an integer >= 0"),
    ("data.seed=-1", "data.seed: must be an integer >= 0"),
    ("data.val_sequences=0", "data.val_sequences: must be an integer >= 1"),
    ("data.corpus.synthetic.vocab_size=0", "data.corpus.synthetic.vocab_size: must be an integer >= 1"),
    ("data.corpus.synthetic.n_sources=0", "data.corpus.synthetic.n_sources: must be an integer >= 1"),
    ("data.corpus.synthetic.successors=-2", "data.corpus.synthetic.successors: must be an integer >= 1"),
    ("data.corpus.synthetic.zipf_exponent=-1", "data.corpus.synthetic.zipf_exponent: must be a finite number >= 0"),
    ("data.corpus.synthetic.concentration=0", "data.corpus.synthetic.concentration: must be a finite number > 0"),
    ("data.corpus.synthetic.seed=-3", "data.corpus.synthetic.seed: must be an integer >= 0"),
    ("mesh.data=0", "mesh.data: must be an integer >= 1 or -1, got 0"),
    ("mesh.fsdp=-2", "mesh.fsdp: must be an integer >= 1 or -1, got -2"),
    ("mesh.tensor=-1", "mesh.tensor: at most one mesh axis may be -1"),
    ("budget.tokens=-1", "budget.tokens: must be a finite number > 0"),
    ("budget.global_batch=0", "budget.global_batch: must be an integer >= 1"),
    ("budget.grad_accum=0", "budget.grad_accum: must be an integer >= 1"),
    ("budget.grad_accum=3", "budget.global_batch: 8 is not a multiple of grad_accum 3"),
    ("seed=-1", "seed: must be an integer >= 0"),
    ("vocab_chunk=0", "vocab_chunk: must be an integer >= 1"),
    ("model.set.seq_len=0", "seq_len: must be an integer >= 1"),
    ("model.set.rope_theta=.nan", "rope_theta: must be a finite number > 0"),
    # Checked by the loop itself, still before anything is written:
    ("model.set.vocab_size=32", "model.set.vocab_size: 32 rows cannot embed"),
    ("optimizer.warmup=20", "optimizer.warmup: 20 steps is not below the run's 20 steps"),
    ("data.val_sequences=4", "data.val_sequences: 4 is less than one evaluation batch"),
    ("mesh.fsdp=2", "mesh sizes {'data': -1, 'fsdp': 2, 'tensor': 1} do not divide 1 devices"),
    ("budget.tokens=10", "budget: D = 10 tokens is less than one step"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_value_names_field_and_the_cli_writes_nothing(tiny_yaml, tmp_path, capsys, override, message):
    from scaling_jax.cli import main

    out = tmp_path / "run"
    assert main(["train", str(tiny_yaml), "--out", str(out), override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaling-jax train: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()


def test_out_that_is_a_file_is_refused_before_writing(tiny_yaml, tmp_path):
    from scaling_jax.train import loop

    out = tmp_path / "run"
    out.write_text("not a folder")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        loop.train(load_train_config(tiny_yaml), out)
    assert out.read_text() == "not a folder"


def test_exponent_form_overrides_parse(tiny_yaml):
    cfg = load_train_config(tiny_yaml, ["optimizer.lr=1e-3", "budget.tokens=2.56e3", "optimizer.eps=1E-9"])
    assert (cfg.optimizer.lr, cfg.budget.tokens, cfg.optimizer.eps) == (1e-3, 2560.0, 1e-9)
