"""err_46 / err_17 averaged as the testbed's are, by the same function the evaluator uses."""

import json

import pytest

from scaling_jax.eval.aggregate import average_errors


def test_testbed_errors_are_reproduced(testbed, testbed_dir):
    runs = [r for r in testbed.runs if r.err_17 is not None]
    assert len(runs) == 104
    for r in runs:
        stem = r.source.rsplit("/", 1)[1].removesuffix(".json")
        acc = json.loads((testbed_dir / "evals" / f"evaluation_{stem}_heavy.json").read_text())["eval_metrics"]["icl"]
        e = average_errors(acc)
        assert e["err_46_n_tasks"] == 46 and e["err_17_n_tasks"] == 17
        assert e["err_46"] == pytest.approx(r.err_46, abs=1e-12)
        assert e["err_17"] == pytest.approx(r.err_17, abs=1e-12)


def test_partial_sets_say_how_many_tasks():
    e = average_errors({"copa": 0.75, "piqa": 0.5, "synth_schema": 0.9, "winogrande": 0.6})
    assert (e["err_17_n_tasks"], e["err_46_n_tasks"], e["err_synthetic_n_tasks"]) == (2, 3, 1)
    assert e["err_17"] == pytest.approx(0.375) and e["err_synthetic"] == pytest.approx(0.1)
    assert e["err_17_tasks"] == ["copa", "piqa"] and e["err_synthetic_tasks"] == ["synth_schema"]
    assert average_errors({})["err_46"] is None
