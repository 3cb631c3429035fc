"""``scaling-jax eval RUN --harness lm-eval``: lm-eval's tasks on one checkpoint, written as lm-eval's
results JSON and as our ``eval.json`` (per task ``accuracy`` plus lm-eval's ``acc`` and
``acc_norm``, a multiple-choice task's gold ``bpb`` and ``chance`` from lm-eval's per-document
log-likelihoods, and the paper's averages over the tasks whose names are its labels), and, for a run
folder with a ``record.json``, that record with the harness's accuracies, acc_norm and task losses,
which ``fit`` and ``posterior`` read as they read our evaluator's.

A task's ``accuracy`` is its ``acc_norm`` (``metric='acc_norm'``, the default: lm-eval's
length-normalised choice, the nearest to LLM-Foundry's lowest mean per-token cross-entropy) or its
``acc``; a task that reports neither (generation, perplexity) keeps its metrics but no accuracy.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from scaling_jax import paths
from scaling_jax.errors import UserError
from scaling_jax.eval.aggregate import average_errors
from scaling_jax.testbed.schema import RunRecord

RESULTS_FILE = "lm_eval_results.json"
METRICS = ("acc_norm", "acc")


@functools.lru_cache(maxsize=4)
def task_manager(include_path: tuple[str, ...] = (), include_defaults: bool = True):
    """lm-eval's task index (its own tasks, about 7 s to build, and the YAML tasks under
    ``include_path``), built once per process."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include_path) or None, include_defaults=include_defaults)


def check_tasks(names: list[str], tm, where: str = "--tasks") -> list[str]:
    """``names`` if lm-eval knows each (a task, group, tag, glob or YAML file); else the unknown
    ones in one line."""
    if not names:
        raise UserError(f"{where}: empty")
    unknown = [n for n in names if not tm.match_tasks([n]) and not Path(n).is_file()]
    if unknown:
        raise UserError(f"{where}: unknown lm-eval task(s) {', '.join(unknown)} (`lm_eval ls tasks` lists them; "
                        "a local task YAML needs --include-path DIR)")
    return names


def task_metrics(row: dict[str, Any]) -> dict[str, float]:
    """``{metric: value}`` of one ``results`` row (``"acc,none": 0.5`` → ``acc: 0.5``), the first
    filter's value where a metric has several; non-numbers (``"N/A"`` stderr) dropped."""
    out: dict[str, float] = {}
    for key, v in row.items():
        name, _, _ = key.partition(",")
        if name != "alias" and name not in out and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[name] = float(v)
    return out


def gold_fields(samples: list[dict[str, Any]]) -> dict[str, float]:
    """``bpb`` (mean over documents of the gold continuation's −log₂ p per byte, as our evaluator's
    ``task_losses``) and ``chance`` (mean of 1 / choices) from one multiple-choice task's logged
    samples; empty where no document names its gold choice by index or by a text that one choice
    alone has (a list of golds, or winogrande's shared continuation, give none)."""
    bpb, chance = [], []
    for smp in samples:
        args = list(smp["arguments"])
        n = len(args)
        if n % 2 == 0 and n and all(a[0] == "" for a in args[n // 2:]) and \
                [a[1] for a in args[: n // 2]] == [a[1] for a in args[n // 2:]]:
            args = args[: n // 2]  # acc_mutual_info's unconditional copies of the choices
        conts = [a[1] for a in args]
        gold = smp["target"]
        if isinstance(gold, str):  # the gold by its text; none where it matches no choice or several
            hits = [i for i, c in enumerate(conts) if c.strip() == gold.strip()]
            gold = hits[0] if len(hits) == 1 else None  # (winogrande: one continuation for every choice)
        if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(conts):
            continue
        resp = smp["filtered_resps"][gold]
        ll = float(resp[0] if isinstance(resp, (tuple, list)) else resp)
        bpb.append(-ll / (np.log(2.0) * max(len(conts[gold].encode("utf-8")), 1)))
        chance.append(1.0 / len(conts))
    return {"bpb": float(np.mean(bpb)), "chance": float(np.mean(chance))} if bpb else {}


def summarize(results: dict[str, Any], metric: str = "acc_norm",
              samples: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Our ``eval.json`` fields from lm-eval's results: per task its accuracy (``metric``, else the
    other of acc/acc_norm), acc, acc_norm, their stderr, examples and shots, and from the logged
    ``samples`` of a multiple-choice task its gold ``bpb`` and ``chance``; the averages."""
    if metric not in METRICS:
        raise UserError(f"--harness-metric: must be one of {list(METRICS)}, got {metric!r}")
    order = (metric, *[m for m in METRICS if m != metric])
    tasks, other = {}, {}
    for name, row in results["results"].items():
        m = task_metrics(row)
        n = results.get("n-samples", {}).get(name, {})
        entry: dict[str, Any] = {"n_examples": n.get("effective"), "n_examples_in_file": n.get("original"),
                                 "num_fewshot": results.get("n-shot", {}).get(name),
                                 "version": results.get("versions", {}).get(name), "metrics": m}
        chosen = next((k for k in order if k in m), None)
        if chosen is None:
            other[name] = entry
            continue
        entry.update({"accuracy": m[chosen], "metric": chosen,
                      **{k: m[k] for k in ("acc", "acc_norm", "acc_stderr", "acc_norm_stderr") if k in m}})
        out_type = results.get("configs", {}).get(name, {}).get("output_type")
        if samples and name in samples and out_type == "multiple_choice":
            entry.update(gold_fields(samples[name]))
        tasks[name] = entry
    acc = {k: v["accuracy"] for k, v in tasks.items()}
    return {"harness": "lm-eval", "harness_version": results.get("lm_eval_version"), "tasks": tasks,
            "other_tasks": other, "missing": [], **average_errors(acc)}


def harness_record(record: RunRecord, summary: dict[str, Any], info: dict[str, Any]) -> RunRecord:
    """``record`` with the harness's accuracies (the chosen metric), ``acc_norm``, gold ``task_losses``
    (bpb), each task's chance and the averages, as training writes ours, so ``fit --law downstream``
    reads either: a run of the synthetic tasks only (``synth_*``) fills ``err_46`` and ``err_17``
    with their mean."""
    s = summary
    synthetic = s["err_46"] is None and s["err_17"] is None and s["err_synthetic"] is not None
    errs = ({"err_46": s["err_synthetic"], "err_17": s["err_synthetic"]} if synthetic
            else {"err_46": s["err_46"], "err_17": s["err_17"]})
    ev = {"suite": "synthetic" if synthetic else "tasks", "harness": "lm-eval", **info,
          **{k: s[k] for k in ("err_46_n_tasks", "err_17_n_tasks", "err_synthetic_n_tasks")}, "missing": []}
    tasks = s["tasks"]
    ev["chance"] = {k: v["chance"] for k, v in tasks.items() if "chance" in v}
    hp = {**record.hyperparameters, "eval": ev}
    return dataclasses.replace(record, accuracies={k: v["accuracy"] for k, v in tasks.items()},
                               acc_norm={k: v["acc_norm"] for k, v in tasks.items() if "acc_norm" in v},
                               task_losses={k: v["bpb"] for k, v in tasks.items() if "bpb" in v},
                               hyperparameters=hp, source="", **errs)


@dataclasses.dataclass
class HarnessResult:
    results: dict[str, Any]  # lm-eval's (without per-sample records)
    summary: dict[str, Any]  # our eval.json
    record: RunRecord | None = None

    @property
    def accuracies(self) -> dict[str, float]:
        return {k: v["accuracy"] for k, v in self.summary["tasks"].items()}

    def write(self, out: str | Path) -> list[str]:
        """lm-eval's results JSON, ``eval.json`` and (with a record) ``record.json``; their paths."""
        from lm_eval.utils import handle_non_serializable

        written = [paths.join(out, RESULTS_FILE), paths.join(out, "eval.json")]
        paths.write_text(written[0], json.dumps(self.results, indent=2, default=handle_non_serializable) + "\n")
        paths.write_json(written[1], self.summary)
        if self.record is not None:
            written.append(paths.join(out, "record.json"))
            paths.write_text(written[-1], self.record.to_json() + "\n")
        return written


def run_harness(model, tasks: list[str], *, include_path: tuple[str, ...] = (), num_fewshot: int | None = None,
                limit: int | None = None, metric: str = "acc_norm", record: RunRecord | None = None,
                include_defaults: bool = True) -> HarnessResult:
    """lm-eval's ``simple_evaluate`` of ``model`` (a ``HarnessLM``) on ``tasks`` (checked first)."""
    from lm_eval import simple_evaluate

    tm = task_manager(tuple(str(p) for p in include_path), include_defaults)
    check_tasks(tasks, tm)
    t0, compiles0 = time.perf_counter(), model.scorer.compiles
    results = simple_evaluate(model=model, tasks=tasks, num_fewshot=num_fewshot, limit=limit, task_manager=tm,
                              log_samples=True, torch_random_seed=None)  # no torch: we do not use it
    samples = results.pop("samples", None)  # per-document log-likelihoods: the gold bpb and chance
    summary = summarize(results, metric, samples)
    summary.update(model=model.info.get("run_name"), limit=limit,
                   speed={"seconds": time.perf_counter() - t0, "compiles": model.scorer.compiles - compiles0})
    info = {"tasks": ",".join(tasks), "num_fewshot": num_fewshot, "limit": limit, "metric": metric}
    return HarnessResult(results, summary, harness_record(record, summary, info) if record is not None else None)
