"""First run vs repeat of the commands a user runs, with JAX's persistent compilation cache.

Each command runs as a fresh process (as a user runs it), three times: with the cache off,
then twice with an empty cache folder (first run fills it, the repeat reuses it). Reports
wall seconds and the ratio repeat / first (goal: under 0.5). Commands:
- ``fit`` on the paper's Table-1 points of RedPajama (a CSV of N, D, loss) with 1,000
  bootstrap resamples;
- ``fit`` on every RedPajama run (35 points) with 1,000 resamples;
- ``reproduce`` on the testbed, figures included.
Run: ``python benchmarks/bench_cli.py [--testbed DIR] [--devices N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def table1_csv(testbed: str, path: Path) -> Path:
    from scaling_jax.paper import recipe
    from scaling_jax.testbed import load_testbed

    runs = recipe.loss_fit_runs(load_testbed(testbed), "rpj")
    path.write_text("N,D,loss\n" + "".join(f"{r.N},{r.D},{r.loss(recipe.LOSS_VAL_SET)}\n" for r in runs))
    return path


def timed_run(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "scaling_jax.cli", *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_tb = os.environ.get("SCALING_JAX_TESTBED", str(Path(__file__).resolve().parents[2] / "shared" / "testbed"))
    ap.add_argument("--testbed", default=default_tb)
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1, help="CPU devices for JAX")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        commands = {
            "fit Table-1 CSV, bootstrap 1000": ["fit", "--runs", str(table1_csv(args.testbed, tmp / "t1.csv")),
                                                "--bootstrap", "1000"],
            "fit rpj (35 runs), bootstrap 1000": ["fit", "--runs", args.testbed, "--dataset", "rpj",
                                                  "--bootstrap", "1000"],
            "reproduce": ["reproduce", "--testbed", args.testbed, "--out", str(tmp / "reproduce")],
        }
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={args.devices}"}
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        print(f"wall seconds per fresh process ({args.devices} CPU devices); cache: JAX persistent compilation cache")
        print(f"{'command':<36} {'cache off':>9} {'first':>7} {'repeat':>7} {'repeat/first':>12} {'repeat/off':>10}")
        for i, (name, argv) in enumerate(commands.items()):
            off = timed_run(argv, {**env, "SCALING_JAX_COMPILATION_CACHE": "off"})
            cache = {**env, "SCALING_JAX_COMPILATION_CACHE": str(tmp / f"cache{i}")}
            first, repeat = timed_run(argv, cache), timed_run(argv, cache)
            print(f"{name:<36} {off:>9.2f} {first:>7.2f} {repeat:>7.2f} {repeat / first:>12.2f} {repeat / off:>10.2f}")


if __name__ == "__main__":
    main()
