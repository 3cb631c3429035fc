"""A simulated sweep with a known Eq. 3 law (alpha != beta) and multiplicative noise."""

import numpy as np

from scaling_jax.laws.fit import predict

LAW = {"E": 1.7, "A": 400.0, "B": 300.0, "alpha": 0.34, "beta": 0.28}
ERROR_LAW = {"epsilon": 0.85, "k": 2.5, "gamma": 0.7}
SIZES = (1e7, 3e7, 8e7, 2e8, 5e8, 1.4e9)
MULTIPLIERS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)


def simulated_points(noise: float = 0.003, seed: int = 0) -> dict[str, np.ndarray]:
    N, M = (a.ravel() for a in np.meshgrid(SIZES, MULTIPLIERS, indexing="ij"))
    D = N * M
    rng = np.random.default_rng(seed)
    loss = predict("chinchilla", LAW, N=N, D=D) * np.exp(noise * rng.standard_normal(N.size))
    error = predict("error", ERROR_LAW, L=loss) * np.exp(noise * rng.standard_normal(N.size))
    return {"N": N, "D": D, "loss": loss, "error": error}


def write_csv(path, pts) -> str:
    rows = [f"{n:.6g},{d:.6g},{v:.8f},{e:.8f}" for n, d, v, e in zip(pts["N"], pts["D"], pts["loss"], pts["error"])]
    path.write_text("N,D,loss,error\n" + "\n".join(rows) + "\n")
    return str(path)
