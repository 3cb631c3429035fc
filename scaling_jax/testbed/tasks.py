"""Downstream task metadata: the 17-task subset and random baselines from ``eval_metadata.csv``."""

from __future__ import annotations

import csv
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from scaling_jax.errors import InputNotFound, UserError

# The paper's 17-task subset (its Table 2 / Section 4), on which 7B models beat chance.
TASKS_17: tuple[str, ...] = (
    "bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy",
    "coqa", "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
    "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa",
    "squad", "piqa",
)


# The paper's 46-task list (``heavy.yaml``'s labels): the tasks of the testbed's eval files.
TASKS_46: tuple[str, ...] = (
    "mmlu_zeroshot", "hellaswag_zeroshot", "jeopardy", "bigbench_qa_wikidata", "arc_easy", "arc_challenge",
    "mmlu", "bigbench_misconceptions", "copa", "siqa", "commonsense_qa", "piqa", "openbook_qa",
    "bigbench_novel_concepts", "bigbench_strange_stories", "bigbench_strategy_qa", "lambada_openai", "hellaswag",
    "winograd", "winogrande", "bigbench_conlang_translation", "bigbench_language_identification",
    "bigbench_conceptual_combinations", "bigbench_elementary_math_qa", "bigbench_dyck_languages",
    "agi_eval_lsat_ar", "bigbench_cs_algorithms", "bigbench_logical_deduction", "bigbench_operators",
    "bigbench_repeat_copy_logic", "simple_arithmetic_nospaces", "simple_arithmetic_withspaces", "math_qa",
    "logi_qa", "pubmed_qa_labeled", "squad", "agi_eval_lsat_rc", "agi_eval_lsat_lr", "coqa",
    "bigbench_understanding_fables", "boolq", "agi_eval_sat_en", "winogender_mc_female", "winogender_mc_male",
    "enterprise_pii_classification", "bbq",
)


def read_random_baselines(path: str | Path) -> Mapping[str, float]:
    """Task name -> random-baseline accuracy in [0, 1] (the CSV holds percent)."""
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.open(newline="")))
    except FileNotFoundError:
        raise InputNotFound(f"{path}: task metadata file not found") from None
    out = {}
    for i, row in enumerate(rows, start=2):
        task = (row.get("Eval Task") or "").strip()
        raw = (row.get("Random baseline") or "").strip()
        if not task:
            raise UserError(f"{path}:{i}: field 'Eval Task' is empty")
        try:
            pct = float(raw)
        except ValueError:
            raise UserError(f"{path}:{i}: field 'Random baseline' of {task!r} is not a number: {raw!r}") from None
        if not 0.0 <= pct <= 100.0:
            raise UserError(f"{path}:{i}: field 'Random baseline' of {task!r} is outside [0, 100]: {pct}")
        out[task] = pct / 100.0
    return MappingProxyType(out)


def mean_error(accuracies: Mapping[str, float], tasks) -> float:
    """Mean top-1 error (1 − accuracy) over ``tasks``; every task must be present."""
    missing = [t for t in tasks if t not in accuracies]
    if missing:
        raise KeyError(f"missing task(s) {missing}")
    return sum(1.0 - accuracies[t] for t in tasks) / len(tasks)


SYNTHETIC_PREFIX = "synth_"
SUITES = {"err_46": TASKS_46, "err_17": TASKS_17}  # each paper average and the tasks it is the mean of


def averaged_tasks(accuracies: Mapping[str, float]) -> dict[str, list[str]]:
    """Per average (``err_46``, ``err_17``, ``err_synthetic``) the tasks of ``accuracies`` it covers."""
    out = {name: [t for t in tasks if t in accuracies] for name, tasks in SUITES.items()}
    out["err_synthetic"] = sorted(t for t in accuracies if t.startswith(SYNTHETIC_PREFIX))
    return out
