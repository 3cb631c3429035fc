"""Wall time of ``scaling-jax fit --estimator bayes --calibrate self`` on a 16-run ladder, against the
same fit without it (the reference, measured in the same run), each as a fresh CLI process
(compilation included, as a user pays it). Goal (issue 29): <= 60 s on 2 CPU cores.

Run: ``PYTHONPATH=. python benchmarks/bench_self_calibration.py [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The synthetic 16-run ladder of the coverage study (studies/self_calibration/).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies" / "self_calibration"))
from self_calibration_coverage import TARGET, draw  # noqa: E402


def write_ladder(path: Path) -> str:
    pts, _, _ = draw(0)
    rows = [f"{n:.8g},{d:.8g},{v:.10f}" for n, d, v in zip(pts["N"], pts["D"], pts["loss"])]
    path.write_text("N,D,loss\n" + "\n".join(rows) + "\n")
    return str(path)


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scaling_jax.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_ladder(Path(tmp) / "ladder16.csv")
        target = f"{TARGET['N']:g},{TARGET['N'] * TARGET['M']:g}"
        base = ["fit", "--runs", csv, "--estimator", "bayes", "--predict", target, "--no-plots"]
        times = {"prior (reference)": [], "--calibrate self": []}
        for r in range(args.repeats):
            times["prior (reference)"].append(timed(base + ["--out", f"{tmp}/p{r}"]))
            times["--calibrate self"].append(timed(base + ["--calibrate", "self", "--out", f"{tmp}/s{r}"]))
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"{'fit --estimator bayes, 16 runs':<34} {'median s':>9}  runs")
    for k, v in times.items():
        print(f"{k:<34} {med[k]:>9.1f}  {', '.join(f'{x:.1f}' for x in v)}")
    print(f"ratio self / reference: {med['--calibrate self'] / med['prior (reference)']:.2f}; goal: self <= 60 s")


if __name__ == "__main__":
    main()
