"""Warmup-stable-decay schedules and WSD trunks with decay branches (issue 31): the schedule's
values where decays start and end; a branch equal bit for bit to the separate WSD run of its
budget; the rules for changing a started trunk's branch list."""

import json
import re

import jax
import numpy as np
import pytest
import yaml

from scaling_jax.config import ConfigError, from_dict
from scaling_jax.errors import UserError
from scaling_jax.train import branches, loop
from scaling_jax.train.config import OptimizerSection, TrainConfig, WsdSection, load_train_config
from scaling_jax.train.lm import load_run
from scaling_jax.train.optimizer import decay_start, decay_steps, schedule

from .conftest import TINY

# The tiny config at 128 tokens a step: a trunk of budgets 768 and 1280 tokens (6 and 10 steps,
# decays of 2 and 4 steps from steps 4 and 6) trains 6 steps and keeps checkpoints at 4 and 6.
TREE = ["optimizer.schedule=wsd", "optimizer.wsd.decay_fraction=0.4", "budget.tokens=1280",
        "budget.branches=[768]", "checkpoint.async_save=false", "checkpoint.keep=1"]


@pytest.mark.parametrize("shape", ["linear", "sqrt", "cosine"])
def test_wsd_schedule_at_the_decay_start_and_end_and_the_same_stable_steps_for_every_length(shape):
    opt = OptimizerSection(lr=1e-2, cooldown_lr=1e-4, warmup=10, schedule="wsd", wsd=WsdSection(0.2, shape))
    S = 1000
    K = decay_start(opt, S)
    assert K == 800
    lr = jax.jit(lambda c, n: schedule(opt, n)(c))  # as the train step computes it: the length traced
    at = {c: float(lr(c, np.int32(S))) for c in (0, 5, 10, K - 1, K, K + 1, K + 100, S - 1, S)}
    assert at[0] == 0.0 and at[5] == pytest.approx(5e-3) and at[10] == at[K - 1] == at[K] == np.float32(1e-2)
    assert 1e-4 < at[S - 1] < at[K + 100] < at[K + 1] < 1e-2 and at[S] == np.float32(1e-4)
    half = {"linear": 0.5, "sqrt": 1 - np.sqrt(0.5), "cosine": 0.5}[shape]  # 1 - sqrt(t): Hägele et al.
    assert float(lr(K + 100, np.int32(S))) == pytest.approx(1e-4 + (1e-2 - 1e-4) * half, rel=1e-5)
    # the stable steps of a 1000-step run are those of every longer run, bit for bit
    counts = np.arange(0, K + 1)
    short = np.asarray(jax.vmap(lambda c: lr(c, np.int32(S)))(counts))
    for longer in (1001, 4000, 123457):
        np.testing.assert_array_equal(short, np.asarray(jax.vmap(lambda c, n=longer: lr(c, np.int32(n)))(counts)))
    # the compiled step and the host agree on every decay start, to ~1e8 steps (exact integers)
    n = np.array([1, 2, 7, 999, 1000, 1001, 20_003, 99_999_999], np.int32)
    assert list(np.asarray(jax.jit(jax.vmap(lambda s: decay_steps(opt, s)))(n))) == \
        [decay_steps(opt, int(s)) for s in n] == [1, 1, 1, 200, 200, 200, 4001, 20_000_000]


def test_cosine_schedule_is_unchanged():
    opt = OptimizerSection(lr=1e-2, cooldown_lr=1e-4, warmup=10)
    lr = schedule(opt, 100)
    assert float(lr(10)) == pytest.approx(1e-2) and float(lr(55)) == pytest.approx(1e-4 + (1e-2 - 1e-4) / 2)
    assert float(lr(100)) == pytest.approx(1e-4)


@pytest.mark.parametrize("change, message", [
    ({"budget": {"tokens": 1280, "branches": [768]}}, "budget.branches: branches share a stable trunk: set "
                                                      "optimizer.schedule: wsd (it is 'cosine')"),
    ({"optimizer": {"schedule": "wsdd"}}, "optimizer.schedule: must be one of cosine, wsd, got 'wsdd'"),
    ({"optimizer": {"schedule": "wsd", "wsd": {"decay_shape": "1-sqrt"}}},
     "optimizer.wsd.decay_shape: must be one of linear, sqrt, cosine, got '1-sqrt'"),
    ({"optimizer": {"schedule": "wsd", "wsd": {"decay_fraction": 0}}}, "optimizer.wsd.decay_fraction"),
    ({"optimizer": {"schedule": "wsd"}, "budget": {"tokens": 1280, "branches": [0]}},
     "budget.branches[0]: must be a positive budget, got 0"),
])
def test_bad_wsd_and_branch_fields_name_the_field(change, message):
    with pytest.raises(ConfigError, match="^" + re.escape("x.yaml." + message)):
        from_dict(TrainConfig, {**TINY, **change}, where="x.yaml")


def test_branches_too_short_or_of_one_length_are_refused_by_name(tmp_path):
    cfg = from_dict(TrainConfig, TINY, where="tiny")
    tree = load_train_config(_tiny(tmp_path), TREE)
    with pytest.raises(ConfigError, match=r"budget.branches: 256 \(2 steps\) starts its decay at step 1, before"):
        branches.trunk_plan(load_train_config(_tiny(tmp_path), TREE + ["budget.branches=[256,768]"]), 1000, 16)
    with pytest.raises(ConfigError, match="768 and 800 are both 6 steps"):
        branches.trunk_plan(load_train_config(_tiny(tmp_path), TREE + ["budget.branches=[768,800]"]), 1000, 16)
    assert branches.trunk_plan(cfg, 1000, 16) is None
    plan = branches.trunk_plan(tree, 1000, 16)
    assert [(b.label, b.steps, b.decay_start) for b in plan.branches] == [("D768", 6, 4), ("D1280", 10, 6)]
    assert (plan.end, plan.schedule_steps, plan.points) == (6, 10, (4, 6))


def _tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _rows(out) -> list[tuple]:
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["kind"], r.get("loss"), r.get("grad_norm"), r.get("lr")) for r in rows]


def same_run(a, b) -> None:
    """Two run folders alike bit for bit: metrics rows, record losses, final parameters."""
    assert _rows(a) == _rows(b)
    ra, rb = (json.loads((x / "record.json").read_text()) for x in (a, b))
    assert ra["losses"] == rb["losses"] and ra["N"] == rb["N"] and ra["D"] == rb["D"]
    pa, pb = load_run(a), load_run(b)
    for x, y in zip(jax.tree.leaves(pa.lm.params), jax.tree.leaves(pb.lm.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def separate_runs(tmp_path, tiny_yaml, budgets) -> dict:
    """The separate WSD runs of each budget (tokens), straight through."""
    out = {}
    for t in budgets:
        out[t] = tmp_path / f"separate-{t}"
        loop.train(load_train_config(tiny_yaml, TREE + ["budget.branches=[]", f"budget.tokens={t}"]), out[t])
    return out


@pytest.mark.slow
def test_branches_equal_separate_wsd_runs_bitwise_and_branch_list_changes(tmp_path, tiny_yaml):
    trunk = tmp_path / "trunk"
    done = branches.train_tree(load_train_config(tiny_yaml, TREE), trunk)
    assert [(n, o.step) for n, o in done] == [("trunk", 6), ("D768", 6), ("D1280", 10)]
    sep = separate_runs(tmp_path, tiny_yaml, [768, 1280, 2560, 896])
    for t in (768, 1280):
        same_run(trunk / "branches" / f"D{t}", sep[t])  # 7cbb090: no optimizer.schedule, no budget.branches
    listing = json.loads((trunk / "trunk.json").read_text())
    assert listing["end_step"] == 6 and [b["folder"] for b in listing["branches"]] == ["branches/D768",
                                                                                      "branches/D1280"]
    rec = json.loads((trunk / "branches" / "D768" / "record.json").read_text())
    assert rec["hyperparameters"]["branch_of"] == str(trunk.resolve()) and rec["D"] == 768
    assert rec["hyperparameters"]["schedule"]["decay_start"] == 4
    assert not (trunk / "record.json").exists()
    assert sorted(p.name for p in (trunk / "checkpoints").iterdir()) == ["4", "6"]  # keep=1, branch points kept

    # a branch behind the trunk (512 tokens: decay from step 2, no checkpoint there) is refused by name
    with pytest.raises(UserError, match=r"budget.branches: 512 \(decay from step 2\) lie behind the trunk"):
        branches.train_tree(load_train_config(tiny_yaml, TREE + ["budget.branches=[512,768]"]), trunk, resume=True)
    # one ahead of it (2560: from step 12) extends the trunk; one behind it at a kept checkpoint
    # (896: from step 4) starts there; the finished branches are not trained again
    before = {t: (trunk / "branches" / f"D{t}" / "record.json").stat().st_mtime_ns for t in (768, 1280)}
    done = branches.train_tree(load_train_config(tiny_yaml, TREE + ["budget.branches=[768,896,2560]"]), trunk,
                               resume=True)
    assert [(n, o and o.step) for n, o in done] == [("trunk", 12), ("D768", None), ("D896", 7), ("D1280", None),
                                                    ("D2560", 20)]
    assert before == {t: (trunk / "branches" / f"D{t}" / "record.json").stat().st_mtime_ns for t in (768, 1280)}
    for t in (896, 2560):
        same_run(trunk / "branches" / f"D{t}", sep[t])
    assert json.loads((trunk / "trunk.json").read_text())["end_step"] == 12


def test_a_wsd_optimizer_builds_for_a_checkpoint_readers_warmup_plus_one_steps():
    # lm.load_run (eval, the branch checks) builds the optimizer for warm-up + 1 steps, whose decay
    # starts inside the warm-up: a state's shapes, never trained; it must not be refused
    opt = OptimizerSection(lr=1e-2, cooldown_lr=1e-4, warmup=20, schedule="wsd")
    lr = schedule(opt, opt.warmup + 1)
    assert float(lr(10)) == pytest.approx(5e-3) and float(lr(21)) == pytest.approx(1e-4)
