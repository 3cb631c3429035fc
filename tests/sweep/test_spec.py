import re

import pytest

from scaling_jax.config import ConfigError
from scaling_jax.model.config import load_model_config
from scaling_jax.model.counts import paper_params
from scaling_jax.sweep.spec import expand, load_spec, recipe_json

from .conftest import micro_spec, write_spec


def test_expansion_counts_names_N_and_D_from_M(micro):
    runs = expand(load_spec(micro))
    assert [r.name for r in runs] == [f"tiny_d{d}-{M}" for d in (16, 32) for M in (2, 4, 8)]
    N16 = paper_params(load_model_config("tiny_d16", {"seq_len": 64, "vocab_size": 128}))
    r = runs[1]
    assert (r.model, r.N, r.D, r.M) == ("tiny_d16", N16, float(round(4 * N16)), pytest.approx(4.0))
    assert r.C == 6 * r.N * r.D
    assert r.config.name == r.name and r.config.budget.multiplier == 4.0 and r.config.model.name == "tiny_d16"
    assert r.steps == round(4 * N16 / (16 * 64))  # the spec's global batch 16 × seq 64
    assert [r.role for r in runs] == ["fit"] * 5 + ["target"]
    assert r.out.endswith("runs/tiny_d16-4")


def test_tokens_seeds_datasets_and_block_overrides_expand(tmp_path):
    spec = micro_spec(tmp_path, run_name="{dataset}-{model}-{M:.3g}-s{seed}", seeds=[0, 1],
                      datasets={"synthetic": {}, "other": {"data.corpus.synthetic.seed": 7}},
                      grid=[{"models": ["tiny_d16"], "tokens": [50_000], "datasets": ["other"],
                             "set": {"optimizer.lr": 1e-3}}])
    del spec["recipe"]
    runs = expand(load_spec(write_spec(tmp_path, spec)))
    assert len(runs) == 2 and {r.seed for r in runs} == {0, 1}
    assert all(r.D == 50_000 and r.dataset == "other" and r.role == "other" for r in runs)
    assert runs[0].config.optimizer.lr == 1e-3 and runs[0].config.data.corpus.synthetic.seed == 7
    assert runs[0].config.data.name == "other" and runs[1].config.seed == 1


def test_a_block_may_take_its_own_seeds(tmp_path):
    spec = micro_spec(tmp_path, run_name="{model}-{M:g}-s{seed}", seeds=[0, 1],
                      grid=[{"models": ["tiny_d16"], "multipliers": [2], "seeds": [0, 1, 2, 5]},
                            {"models": ["tiny_d32"], "multipliers": [8]}])
    del spec["recipe"]
    runs = expand(load_spec(write_spec(tmp_path, spec)))
    assert [r.name for r in runs] == ["tiny_d16-2-s0", "tiny_d16-2-s1", "tiny_d16-2-s2", "tiny_d16-2-s5",
                                      "tiny_d32-8-s0", "tiny_d32-8-s1"]
    assert [r.config.seed for r in runs] == [0, 1, 2, 5, 0, 1]


@pytest.mark.parametrize("seeds, message", [([0, 0], r"grid\[0\]\.seeds: \[0, 0\] must be distinct non-negative"),
                                           ([-1], r"grid\[0\]\.seeds: \[-1\] must be distinct non-negative"),
                                           ([1.5], r"grid\[0\]\.seeds\[0\]: expected an integer, got 1.5")])
def test_block_seeds_must_be_distinct_non_negative_integers(tmp_path, seeds, message):
    spec = micro_spec(tmp_path, grid=[{"models": ["tiny_d16"], "multipliers": [2], "seeds": seeds}])
    del spec["recipe"]
    with pytest.raises(ConfigError, match=message):
        load_spec(write_spec(tmp_path, spec))


@pytest.mark.parametrize("seeds, message", [([], r"seeds: needs at least one seed"),
                                           ([3, 3], r"seeds: \[3, 3\] must be distinct non-negative")])
def test_spec_seeds_are_checked_too(tmp_path, seeds, message):
    with pytest.raises(ConfigError, match=message):
        load_spec(write_spec(tmp_path, micro_spec(tmp_path, seeds=seeds)))


def test_recipe_json_names_the_runs(micro):
    spec = load_spec(micro)
    rec = recipe_json(spec, expand(spec))
    assert rec["targets"] == ["tiny_d32-8"] and rec["error_fit"] == rec["loss_fit"] and len(rec["loss_fit"]) == 5


@pytest.mark.parametrize("change, message", [
    ({"grid": [{"models": ["tiny_d7"], "multipliers": [20]}]}, "'tiny_d7' is not a model preset"),
    ({"grid": [{"models": ["tiny_d16"], "multipliers": [20, 0]}]}, "must be a positive number"),
    ({"grid": [{"models": ["tiny_d16"], "multipliers": [-5]}]}, "must be a positive number"),
    ({"recipe": {"name": "r", "val_set": "synthetic", "loss_fit": [{"model": "tiny_d16", "M": 2}],
                 "targets": [{"model": "tiny_d32", "M": 8}]}}, "cannot determine Eq. 4"),
    ({"grid": [{"models": ["tiny_d16", "tiny_d32", "tiny_d64", "tiny_d128", "tiny_d256"], "multipliers": [2]}],
      "recipe": {"name": "r", "val_set": "synthetic", "targets": [{"model": "tiny_d256", "M": 2}],
                 "loss_fit": [{"model": m, "M": 2} for m in ("tiny_d16", "tiny_d32", "tiny_d64", "tiny_d128")]}},
     "cannot determine Eq. 4"),  # one multiplier only
    ({"run_name": "{model}"}, "would share the output folder"),
    ({"run_name": "{dataset}", "datasets": {"a": {}, "a/b": {}},
      "grid": [{"models": ["tiny_d16"], "multipliers": [2]}]}, "lies inside run folder"),
    ({"grid": [{"models": ["tiny_d16"], "multipliers": [2]},
               {"models": ["tiny_d32"], "multipliers": [2], "set": {"model.set.vocab_size": 256}}]},
     "disagree on vocabulary"),
    ({"grid": [{"models": ["tiny_d16"], "multipliers": [2]},
               {"models": ["tiny_d32"], "multipliers": [2], "set": {"model.set.seq_len": 32}}]},
     "disagree on vocabulary/sequence length"),
    ({"grid": [{"models": ["tiny_d16"], "multipliers": [2], "tokens": [100]}]},
     "exactly one of multipliers and tokens"),
    ({"grids": []}, "unknown key(s) ['grids']"),
    ({"recipe": {"name": "r", "val_set": "synthetic", "loss_fit": [{"model": "tiny_d64", "M": 2}],
                 "targets": [{"model": "tiny_d32", "M": 8}]}}, "no run of the grid is tiny_d64 at M=2"),
])
def test_bad_specs_fail_before_anything_runs(tmp_path, change, message):
    spec = micro_spec(tmp_path, **change)
    if "grid" in change and "recipe" not in change:
        del spec["recipe"]
    with pytest.raises(ConfigError, match=re.escape(message)):
        expand(load_spec(write_spec(tmp_path, spec)))
    assert not (tmp_path / "runs").exists()


def test_missing_spec_and_base_are_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: sweep spec not found"):
        load_spec(tmp_path / "nope.yaml")
    spec = micro_spec(tmp_path, base="missing_base.yaml")
    with pytest.raises(ConfigError, match="missing_base.yaml not found"):
        expand(load_spec(write_spec(tmp_path, spec)))
