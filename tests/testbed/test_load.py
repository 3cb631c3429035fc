import json
import math
import shutil

import pytest

from scaling_jax.testbed import RunRecord, TestbedError, load_testbed
from scaling_jax.testbed.load import val_set_name


def test_release_loads_whole(testbed):
    assert len(testbed) == 104
    assert testbed.datasets == ("c4_original", "rpj", "rw_original")
    r = testbed.get("rpj-open_lm_1b-32.0")
    assert r.model == "open_lm_1b" and r.N == 1_439_795_200
    assert r.M == pytest.approx(640.0) and r.C == pytest.approx(6 * r.N * r.D)
    assert set(r.losses) >= {"c4_val", "openlm", "paloma_c4_en", "val_de-en_100"}
    assert len(r.accuracies) == 46
    # 46-task mean error: every metadata task in the eval file.
    assert r.err_46 == pytest.approx(sum(1 - a for a in r.accuracies.values()) / 46)
    assert 0 < r.err_17 < r.err_46 < 1
    assert testbed.random_baselines["mmlu_zeroshot"] == pytest.approx(0.25)
    small = testbed.select(dataset="rpj", model="d=96_l=8_h=4")
    assert {round(x.M) for x in small} == {5, 10, 20, 40, 80, 160, 320, 640}
    assert testbed.find("rpj", "d=96_l=8_h=4", 320).name == "rpj-d=96_l=8_h=4-16.0"


def test_val_set_names():
    assert val_set_name("training/eval_data/c4_val/shard-{0000000..0000010}.tar") == "c4_val"
    assert val_set_name("training/eval_data/val_tok_mult/de-en/val_de-en_100.tar") == "val_de-en_100"
    assert val_set_name("x/val_tok_mult/paloma_ptb/00000001.tar") == "paloma_ptb"


def test_record_json_roundtrip(testbed):
    r = testbed.get("c4_original-d=512_l=8_h=4-1.0")
    back = RunRecord.from_json(r.to_json(), source=r.source)
    assert back == r


def test_own_records_folder(tmp_path, testbed):
    r = testbed.get("rw_original-d=96_l=8_h=4-1.0")
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "record.json").write_text(r.to_json())
    tb = load_testbed(tmp_path)
    assert len(tb) == 1 and tb.runs[0].losses == r.losses


@pytest.fixture
def small_copy(tmp_path, testbed_dir):
    """A copy of the release with three models, to damage."""
    dst = tmp_path / "tb"
    (dst / "models").mkdir(parents=True)
    (dst / "evals").mkdir()
    shutil.copy(testbed_dir / "eval_metadata.csv", dst)
    for stem in ["rpj-d=96_l=8_h=4-1.0", "rpj-d=96_l=8_h=4-2.0", "rpj-d=512_l=8_h=4-1.0"]:
        shutil.copy(testbed_dir / "models" / f"{stem}.json", dst / "models")
        shutil.copy(testbed_dir / "evals" / f"evaluation_{stem}_heavy.json", dst / "evals")
    return dst


def _edit(path, fn):
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def test_missing_folder(tmp_path):
    with pytest.raises(TestbedError, match="not found"):
        load_testbed(tmp_path / "nope")


def test_truncated_json_names_file(small_copy):
    p = small_copy / "models" / "rpj-d=96_l=8_h=4-2.0.json"
    p.write_text(p.read_text()[:500])
    with pytest.raises(TestbedError, match=r"rpj-d=96_l=8_h=4-2\.0\.json: malformed or truncated JSON"):
        load_testbed(small_copy)


def test_model_without_eval(small_copy):
    (small_copy / "evals" / "evaluation_rpj-d=512_l=8_h=4-1.0_heavy.json").unlink()
    with pytest.raises(TestbedError, match=r"rpj-d=512_l=8_h=4-1\.0\.json: has no eval file"):
        load_testbed(small_copy)


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_loss_names_field(small_copy, bad):
    p = small_copy / "models" / "rpj-d=96_l=8_h=4-1.0.json"
    _edit(p, lambda d: d["results"][1].__setitem__("loss", bad))
    with pytest.raises(TestbedError, match=r"rpj-d=96_l=8_h=4-1\.0\.json: field 'loss' must be a positive finite"):
        load_testbed(small_copy)


def test_missing_field(small_copy):
    p = small_copy / "models" / "rpj-d=96_l=8_h=4-1.0.json"
    _edit(p, lambda d: d["hyperparameters"].pop("tokens"))
    with pytest.raises(TestbedError, match="missing field 'hyperparameters.tokens'"):
        load_testbed(small_copy)


def test_duplicate_run(small_copy):
    src = small_copy / "models" / "rpj-d=96_l=8_h=4-1.0.json"
    shutil.copy(src, small_copy / "models" / "copy.json")
    shutil.copy(small_copy / "evals" / "evaluation_rpj-d=96_l=8_h=4-1.0_heavy.json",
                small_copy / "evals" / "evaluation_copy_heavy.json")
    with pytest.raises(TestbedError, match="duplicate run 'rpj-d=96_l=8_h=4-1.0'"):
        load_testbed(small_copy)


def test_lenient_skips_with_one_warning(small_copy):
    (small_copy / "models" / "rpj-d=96_l=8_h=4-2.0.json").write_text("{")
    (small_copy / "evals" / "evaluation_rpj-d=512_l=8_h=4-1.0_heavy.json").unlink()
    with pytest.warns(UserWarning, match=r"skipped 2 bad testbed file\(s\)"):
        tb = load_testbed(small_copy, strict=False)
    assert [r.name for r in tb] == ["rpj-d=96_l=8_h=4-1.0"]
    assert len(tb.skipped) == 2


def test_record_validation():
    with pytest.raises(ValueError, match="field 'N' must be a positive"):
        RunRecord(name="x", dataset="d", model="m", N=0, params_no_embed=1, D=1.0, losses={})
    with pytest.raises(ValueError, match="unknown field"):
        RunRecord.from_json(json.dumps({"name": "x", "bogus": 1}))
    with pytest.raises(ValueError, match="accuracy of task 't'"):
        RunRecord(name="x", dataset="d", model="m", N=1, params_no_embed=1, D=1.0, losses={}, accuracies={"t": 1.5})
    assert math.isclose(RunRecord(name="x", dataset="d", model="m", N=2, params_no_embed=1, D=8.0, losses={}).M, 4.0)
