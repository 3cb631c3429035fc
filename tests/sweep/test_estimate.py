from scaling_jax.cli import main
from scaling_jax.cli.sweep import _duration
from scaling_jax.sweep import estimate
from scaling_jax.sweep.spec import expand, load_spec


def test_probe_measures_each_shape_once_and_plan_prints_estimates(micro, capsys):
    runs = expand(load_spec(micro))
    tps = estimate.throughputs(runs, {"tiny_d32": 1000.0}, steps=2)
    assert len(tps) == 2  # one probe for tiny_d16's shape; tiny_d32 from the table
    d16, d32 = (tps[estimate.shape_key(r)] for r in (runs[0], runs[3]))
    assert d16 > 0 and d32 == 1000.0
    assert estimate.seconds(runs[3], tps) == runs[3].steps * 16 * 64 / 1000.0
    assert estimate.exact_flops(runs[0]) > 0
    assert main(["sweep", "plan", str(micro), "throughput={tiny_d16: 2000, tiny_d32: 1000}"]) == 0
    out = capsys.readouterr().out
    total = sum(r.steps * 16 * 64 / (2000.0 if r.model == "tiny_d16" else 1000.0) for r in runs)
    assert out.splitlines()[-1].split()[-1] == _duration(total)
