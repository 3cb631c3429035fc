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
