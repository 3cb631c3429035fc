"""``scaling-jax train``: the training run, top to bottom.

Config → model size N and budget → data → output folder checks → mesh, state (fresh or
resumed) → steps with logging, validation and checkpoints → final validation → run record.
Every check that can fail on bad input runs before anything is written.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from scaling_jax import paths
from scaling_jax.config import ConfigError, to_dict
from scaling_jax.data.pipeline import batches, open_source
from scaling_jax.errors import UserError
from scaling_jax.eval.suite import SuiteResult, resolve_tasks, run_suite
from scaling_jax.eval.tasks import load_task
from scaling_jax.model.counts import paper_params, params_no_embed
from scaling_jax.model.sharding import check_even_split, make_mesh, split_sizes
from scaling_jax.testbed.schema import RunRecord
from scaling_jax.train import branches, distributed, evaluate, peak, prefetch, throughput, wandb_log
from scaling_jax.train.checkpoint import Checkpoints, check_store, committed_steps, param_shapes
from scaling_jax.train.config import TrainConfig, budget, config_changes, model_config
from scaling_jax.train.lm import restore_params, run_tokenizer, transformer_lm
from scaling_jax.train.metrics import MetricsLog
from scaling_jax.train.optimizer import decay_start, optimizer, schedule
from scaling_jax.train.step import global_batch, setup
from scaling_jax.train.stop import StopFlag


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


@dataclasses.dataclass
class Outcome:
    step: int
    stopped_early: bool
    record: RunRecord | None


def run_name(cfg: TrainConfig, model_name: str, M: float) -> str:
    """The testbed's naming: dataset-model-chinchilla multiplier (M / 20)."""
    return cfg.name or f"{cfg.data.name}-{model_name}-{M / 20:g}"


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, init_from: str | Path | None = None,
          allow_config_change: bool = False, stop: StopFlag | None = None) -> Outcome:
    """Run ``cfg`` into ``out``: fresh, resumed from ``out``'s latest committed checkpoint, or
    starting from the parameters of the checkpoint ``init_from`` (e.g. an imported OpenLM model)
    with a fresh optimizer at step 0. A resume refuses a checkpoint trained under other training
    fields (``config.TRAINING_FIELDS``) unless ``allow_config_change``. ``stop``: a SIGTERM flag
    the caller installed earlier (a signal before this call then still stops the run); without
    it, one is installed for the loop."""
    out = str(out)
    if resume and init_from is not None:
        raise UserError("--init-from starts a new run from a checkpoint's parameters; --resume continues "
                        "the run in --out: pass one of them")
    pi, pc = jax.process_index(), jax.process_count()
    writer = distributed.is_writer()

    # Model size and budget.
    model_cfg = model_config(cfg)
    N = paper_params(model_cfg)
    bud = budget(cfg, N, model_cfg.seq_len)
    trunk = branches.trunk_plan(cfg, N, model_cfg.seq_len)  # a WSD trunk: the stable steps of its branches
    run_steps = trunk.schedule_steps if trunk else bud.steps  # the schedule's length (a trunk's: its largest branch)
    bud = trunk.budget() if trunk else bud  # a trunk trains to its largest branch's decay start
    points = trunk.points if trunk else ()  # and checkpoints at each branch's
    schedule(cfg.optimizer, run_steps)  # checks warm-up < steps now, before anything is read
    # The optimizer is built inside the jitted step from the run length as an argument, so runs
    # of one shape at different budgets share one compiled step (the persistent cache).
    tx, lr = functools.partial(optimizer, cfg.optimizer), functools.partial(schedule, cfg.optimizer)
    gb = cfg.budget.global_batch

    # Data: the training stream and every validation set.
    train_src = open_source(cfg.data.corpus, "train", model_cfg.seq_len)
    val_sets = {cfg.data.name: open_source(cfg.data.corpus, "val", model_cfg.seq_len, cfg.data.val_sequences)}
    for v in cfg.data.extra_val:
        if v.name in val_sets:
            raise ConfigError(f"data.extra_val: validation set name {v.name!r} is used twice")
        val_sets[v.name] = open_source(v.corpus, "val", model_cfg.seq_len, cfg.data.val_sequences)
    for src in [train_src, *val_sets.values()]:
        if src.vocab_size > model_cfg.vocab_size:
            raise ConfigError(f"model.set.vocab_size: {model_cfg.vocab_size} rows cannot embed the "
                              f"{src.vocab_size} token ids of {src.name}")
    eval_gb = gb // cfg.budget.grad_accum
    if cfg.data.val_sequences < eval_gb:
        raise ConfigError(f"data.val_sequences: {cfg.data.val_sequences} is less than one "
                          f"evaluation batch of {eval_gb} sequences")

    # Downstream tasks, read and checked before anything is written.
    eval_specs, eval_tok = [], None
    if cfg.eval.tasks:
        corpus = cfg.data.corpus
        eval_specs = resolve_tasks(cfg.eval.tasks, corpus.synthetic if corpus.kind == "synthetic" else None,
                                   where="eval.tasks")
        eval_tok = run_tokenizer(cfg, model_cfg.vocab_size, cfg.eval.tokenizer or None)
        for spec in eval_specs:  # a malformed task file fails now, not after training
            load_task(spec)

    wandb_log.check(cfg.logging.wandb)  # wandb installed when tracking is on
    # Output folder: a fresh run never overwrites, a resumed one needs a checkpoint.
    if not paths.is_gcs(out) and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose a new --out")
    ckpt_dir = paths.join(out, "checkpoints")
    check_store(ckpt_dir)
    saved = committed_steps(ckpt_dir)  # a step folder a death mid-save left unfinished does not count
    has_record = paths.exists(paths.join(out, "record.json"))
    if not resume and (saved or has_record):
        raise UserError(f"{out}: holds a previous run; pass --resume to continue it or choose a new --out")
    if resume and not saved:
        if has_record or not paths.listdir(ckpt_dir):
            raise UserError(f"{ckpt_dir}: no checkpoint to resume from")
        if writer:
            print(f"{ckpt_dir}: no finished checkpoint (the only save was cut short); starting from step 0",
                  file=sys.stderr)
        resume = False
    if resume and max(saved) >= bud.steps and has_record:
        raise UserError(f"{out}: finished ({max(saved)} of {bud.steps} steps, record.json written); "
                         "raise the budget (with --allow-config-change) to train on")
    if trunk is not None:  # a branch added behind a resumed trunk is refused, by name
        branches.check_reachable(trunk, out, saved[-1] if resume else 0, saved)
    fork = (branches.branch_start(cfg, out, bud, allow_change=allow_config_change)
            if cfg.budget.branch_of and not resume else None)  # a branch's first start: from its trunk

    # Mesh, state and the data iterator, fresh or restored.
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    s = setup(model_cfg, tx, mesh, seed=cfg.seed, grad_accum=cfg.budget.grad_accum,
              z_loss=cfg.optimizer.z_loss, vocab_chunk=cfg.vocab_chunk, lr_schedule=lr, total_steps=run_steps)
    shapes = param_shapes(s.abstract_state["params"])
    check_even_split(s.abstract_state, s.state_shardings)
    shards = split_sizes(s.batch_sharding)[0]
    if eval_gb % shards:
        raise ConfigError(f"budget.global_batch: micro-batches of {eval_gb} sequences (global_batch / grad_accum) "
                          f"do not split evenly over the mesh's {shards} batch shards (data × fsdp)")
    data_iter = prefetch.DevicePrefetch(
        iter(batches(train_src, global_batch=gb, seed=cfg.data.seed, shuffle=cfg.data.corpus.kind == "tokens",
                     process_index=pi, process_count=pc, threads=cfg.data.threads, prefetch=cfg.data.prefetch)),
        lambda rows: global_batch(rows, s.batch_sharding, gb), prefetch.depth(cfg.data.device_prefetch))
    init_params = None
    if init_from is not None:  # read (and its shapes checked) before anything is written
        with jax.set_mesh(mesh):
            init_params, _ = restore_params(init_from, s, shapes)
    # Every check has passed: from here on the run writes into ``out``.
    ckpts = Checkpoints(ckpt_dir, keep=cfg.checkpoint.keep, async_save=cfg.checkpoint.async_save, cleanup=True,
                        keep_steps=points)
    meta = {"model": dataclasses.asdict(model_cfg), "param_shapes": shapes, "config": to_dict(cfg)}
    with jax.set_mesh(mesh):
        if resume:
            start = saved[-1]
            if "opt_state" not in ckpts.read_meta(start).get("state_keys", ["opt_state"]):
                raise UserError(f"{paths.join(ckpt_dir, str(start))}: holds parameters only (an import); start a "
                                "new run from it with --init-from")
            state, saved_meta = ckpts.restore(start, s.abstract_state, s.state_shardings, data_iter, shapes)
            check_config(saved_meta, cfg, paths.join(ckpt_dir, str(start)), allow_config_change)
        elif fork is not None:
            start, state = fork.step, branches.restore(fork, s, data_iter, shapes, out, writer=writer)
        else:
            start, state = 0, s.init() if init_params is None else s.start_from(init_params)
    log = MetricsLog(out, enabled=writer, tensorboard=cfg.logging.tensorboard,
                     resume_step=start if resume or fork else None, final=start == bud.steps)
    log = wandb_log.start(cfg.logging.wandb, out, log, config=to_dict(cfg), name=run_name(cfg, model_cfg.name, bud.M),
                          enabled=writer)
    if writer:
        paths.write_json(paths.join(out, "config.json"), to_dict(cfg))
        if trunk is not None:
            paths.write_json(paths.join(out, branches.TRUNK_FILE), trunk.listing(cfg))

    def validate(step: int) -> dict[str, evaluate.ValResult]:
        results = {}
        for name, src in val_sets.items():
            per_seq = evaluate.per_sequence_losses(
                s, state["params"], src, n_sequences=cfg.data.val_sequences,
                global_batch_size=eval_gb, process_index=pi, process_count=pc)
            results[name] = evaluate.summarize(per_seq)
            log.write(step, f"val/{name}", results[name].record())
        return results

    lm = transformer_lm(s.graphdef, None, model_cfg, mesh, name=run_name(cfg, model_cfg.name, bud.M))

    def downstream(step: int) -> SuiteResult:
        res = run_suite(dataclasses.replace(lm, params=state["params"]), eval_tok, eval_specs,
                        limit=cfg.eval.limit)
        log.write(step, "eval", {**res.accuracies, **{k: v for k, v in res.summary.items()
                                                      if k.startswith("err_") and v is not None}})
        return res

    pending: list[tuple[int, dict]] = []
    last_good = start if resume else None

    def flush() -> dict | None:
        """Fetch the steps' metrics; stop on a non-finite loss, keeping the last good checkpoint."""
        rows = [(st, {k: float(v) for k, v in jax.device_get(m).items()}) for st, m in pending]
        pending.clear()
        for st, m in rows:
            if not (np.isfinite(m["loss"]) and np.isfinite(m["grad_norm"])):
                kept = (paths.join(ckpt_dir, str(last_good)) if last_good is not None
                        else "none (no checkpoint was saved yet)")
                raise NonFiniteLoss(f"loss {m['loss']}, gradient norm {m['grad_norm']} at step {st}: stopping. "
                                    f"Last good checkpoint: {kept}")
        return rows[-1][1] if rows else None

    own_stop = stop is None
    stop = StopFlag() if own_stop else stop
    bar = tqdm(total=bud.steps, initial=start, unit="step", dynamic_ncols=True,
               disable=not (writer and cfg.logging.progress))
    speed = throughput.Speed.of(model_cfg, bud.tokens_per_step, jax.devices(), cfg.logging.peak_flops)
    if writer and speed.peak_flops is None:
        print(peak.unknown_note(speed.device_kind), file=sys.stderr)
    meter = throughput.Meter(speed, start)  # the loop's time split, per train row (throughput.py)
    step, stopped = start, False
    try:
        with jax.set_mesh(mesh):
            while step < bud.steps:
                if (pc == 1 or step % cfg.logging.every == 0) and stop.agreed():
                    flush()
                    if step > start and ckpts.latest_step() != step:  # nothing trained: nothing to save
                        log.sync()
                        ckpts.save(step, state, data_iter, {**meta, "step": step})
                    ckpts.wait()
                    stopped = True
                    break
                with meter.timing("data"):
                    tokens_BxT = next(data_iter)
                with meter.timing("device"):
                    state, metrics = s.train_step(state, tokens_BxT)
                step += 1
                pending.append((step, metrics))
                if step % cfg.logging.every == 0 or step == bud.steps:
                    with meter.timing("device"):
                        m = flush()
                    m.update(meter.interval(step))
                    m["tokens"] = step * bud.tokens_per_step
                    log.write(step, "train", m)
                    bar.set_postfix(loss=f"{m['loss']:.4f}", tok_s=f"{m['tokens_per_s']:.3g}")
                    bar.update(step - bar.n)
                if cfg.logging.val_every and step % cfg.logging.val_every == 0 and step < bud.steps:
                    with meter.timing("excluded"):
                        validate(step)
                if eval_specs and cfg.eval.every and step % cfg.eval.every == 0 and step < bud.steps:
                    with meter.timing("excluded"):
                        downstream(step)
                if step % cfg.checkpoint.every == 0 or step == bud.steps or step in points:
                    with meter.timing("device"):
                        flush()
                    log.sync()  # the log's rows up to this step are stored before the checkpoint is
                    ckpts.save(step, state, data_iter, {**meta, "step": step})
                    last_good = step
            if stopped:
                wandb_log.finish(log, stopped=True)
                return Outcome(step=step, stopped_early=True, record=None)
            if trunk is not None:  # its branches validate and write the records
                wandb_log.finish(log)
                return Outcome(step=step, stopped_early=False, record=None)
            results = validate(step)
            suite = downstream(step) if eval_specs else None
    finally:
        bar.close()
        if own_stop:
            stop.restore()
        ckpts.close()
        log.close()

    hp, down = _hyperparameters(cfg, model_cfg, bud, val_sets), {}
    hp["speed"] = meter.summary(log.earlier_rows("train"))  # medians of this start's intervals, else earlier starts'
    if init_from is not None:
        hp["init_from"] = str(init_from)
    if cfg.budget.branch_of:
        hp["branch_of"] = branches.resolve(out, cfg.budget.branch_of)
    if suite is not None:
        down, hp["eval"] = _downstream_fields(cfg, suite)
    record = RunRecord(
        name=run_name(cfg, model_cfg.name, bud.M),
        dataset=cfg.data.name,
        model=model_cfg.name,
        N=N,
        params_no_embed=params_no_embed(model_cfg),
        D=bud.tokens_trained,
        losses={k: r.loss for k, r in results.items()},
        loss_intervals={k: (r.lower_95, r.upper_95) for k, r in results.items()},
        hyperparameters=hp,
        **down,
    )
    if writer:
        if suite is not None:
            suite.write(out)
        paths.write_text(paths.join(out, "record.json"), record.to_json() + "\n")
    wandb_log.finish(log, record)
    return Outcome(step=step, stopped_early=False, record=record)


def check_config(saved_meta: dict, cfg: TrainConfig, where: str, allow_change: bool) -> None:
    """Refuse to resume the checkpoint at ``where`` under training fields other than those it was
    trained with (a new lr, warm-up or budget would continue it on another schedule), naming them."""
    changes = config_changes(saved_meta.get("config") or {}, to_dict(cfg)) if "config" in saved_meta else []
    if cfg.budget.branches:  # a trunk's budgets are its branch list: branches.check_reachable rules on them
        changes = branches.beside_budget(changes)
    if changes and not allow_change:
        raise UserError(f"{where}: trained with another config than this resume's: {'; '.join(changes)}. "
                        "Resume with the config it was trained with, or pass --allow-config-change "
                        "to continue it under the new values")


def _downstream_fields(cfg: TrainConfig, suite: SuiteResult) -> tuple[dict, dict]:
    """The record's ``accuracies`` and errors. A synthetic-suite run has no paper tasks: its suite
    average fills ``err_46`` and ``err_17`` (``hyperparameters.eval.suite`` says so), so ``fit
    --law error`` and ``posterior`` read it like the paper's."""
    s = suite.summary
    synthetic = s["err_46"] is None and s["err_17"] is None and s["err_synthetic"] is not None
    errs = {"err_46": s["err_synthetic"], "err_17": s["err_synthetic"]} if synthetic else \
        {"err_46": s["err_46"], "err_17": s["err_17"]}
    info = {"suite": "synthetic" if synthetic else "tasks", "tasks": cfg.eval.tasks, "limit": cfg.eval.limit,
            **{k: s[k] for k in ("err_46_n_tasks", "err_17_n_tasks", "err_synthetic_n_tasks")}, "missing": s["missing"],
            # each task's chance and (synthetic suite) Bayes accuracy: the downstream laws' floor and ceiling
            "chance": {k: v["chance"] for k, v in s["tasks"].items()},
            "bayes_accuracy": {k: v["bayes_accuracy"] for k, v in s["tasks"].items() if "bayes_accuracy" in v}}
    task_losses = {k: v for k, v in suite.task_losses.items() if v is not None}  # bits per byte (issue 30)
    return {"accuracies": suite.accuracies, "task_losses": task_losses, "acc_norm": suite.acc_norm, **errs}, info


def _hyperparameters(cfg: TrainConfig, model_cfg, bud, val_sets) -> dict:
    o = cfg.optimizer
    hp = {
        "params": bud.N, "params_no_embed": params_no_embed(model_cfg), "tokens": bud.D,
        "tokens_trained": bud.tokens_trained, "chinchilla_multiplier": bud.M / 20, "M": bud.M,
        "steps": bud.steps, "lr": o.lr, "wd": o.weight_decay, "cd": o.cooldown_lr,
        "warmup": o.warmup, "global_bs": cfg.budget.global_batch, "acc": cfg.budget.grad_accum,
        "z_loss": o.z_loss, "qk_norm": model_cfg.qk_norm, "seq_len": model_cfg.seq_len,
        "dtype": model_cfg.dtype, "seed": cfg.seed,
        "val_data": {name: [f"{src.name}"] for name, src in val_sets.items()},
    }
    if o.schedule == "wsd":  # where the decay starts (a branch: where it left its trunk) and its shape
        hp["schedule"] = {"kind": "wsd", "decay_fraction": o.wsd.decay_fraction, "decay_shape": o.wsd.decay_shape,
                          "decay_start": decay_start(o, bud.steps)}
    bayes = {name: src.mean_bayes_loss(_n_eval(cfg, len(src)))
             for name, src in val_sets.items() if hasattr(src, "mean_bayes_loss")}
    if bayes:
        hp["bayes_loss"] = bayes  # the synthetic language's true (Bayes-optimal) loss per set
    return hp


def _n_eval(cfg: TrainConfig, n: int) -> int:
    eval_gb = cfg.budget.global_batch // cfg.budget.grad_accum
    return (min(n, cfg.data.val_sequences) // eval_gb) * eval_gb
