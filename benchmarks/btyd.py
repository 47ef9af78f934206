"""How long a BG/NBD fit takes on a million customers, grouped, against an ungrouped reference.

Run: .venv/bin/python benchmarks/btyd.py [n_customers]

Histories are simulated from a known BG/NBD at day granularity (as real transaction
dates are), so many customers share (x, t_x, T) and grouping has something to merge.
The reference fit is ungrouped on a 100k subsample in the same process; the ratio of
time per customer is the number to watch, not the absolute seconds.

Then the Pareto/NBD fit on the feature stage's sample size (features.pnbd_fit_customers)
of the same histories: its likelihood evaluations (a count, unlike seconds, not moved by
other load on the machine) and CPU seconds.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from churn.config import FeaturesConfig
from churn.features import btyd_pnbd
from churn.features.btyd import BetaGeoModel

TRUE = {"r": 0.25, "alpha": 4.0 * 7, "a": 0.8, "b": 2.5}  # alpha in days (4 weeks)


def simulate_days(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, t_x, T in whole days for n customers acquired uniformly over two years."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 731, n).astype(float)
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    k = rng.poisson(rate * age)  # purchases in (0, T] had nobody dropped out
    x = np.minimum(k, rng.geometric(rng.beta(TRUE["a"], TRUE["b"], n)))
    last = age * rng.beta(np.maximum(x, 1), k - x + 1)  # x-th of k uniform purchase times
    return x.astype(float), np.where(x > 0, np.floor(last), 0.0), age


def timed_fit(model: BetaGeoModel, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> float:
    start = time.perf_counter()
    model.fit(x, t_x, age)
    return time.perf_counter() - start


def main(n: int = 1_000_000) -> None:
    x, t_x, age = simulate_days(n)
    n_ref = min(n, 100_000)
    n_rows = len(np.unique(np.column_stack([x, t_x, age]), axis=0))
    print(f"{n:,} customers, {n_rows:,} distinct (x, t_x, T) rows")

    grouped = BetaGeoModel()
    t_grouped = timed_fit(grouped, x, t_x, age)
    ungrouped = BetaGeoModel(group_identical=False)
    t_ref = timed_fit(ungrouped, x[:n_ref], t_x[:n_ref], age[:n_ref])

    for name, model in (("grouped, all", grouped), (f"ungrouped, first {n_ref:,}", ungrouped)):
        fitted = ", ".join(f"{p}={getattr(model, p + '_'):.4g}" for p in TRUE)
        print(f"  {name:<24} {fitted}")
    print(f"  true                     {', '.join(f'{p}={v:.4g}' for p, v in TRUE.items())}")
    print(f"grouped fit, {n:,} customers:     {t_grouped:7.2f} s")
    print(f"ungrouped fit, {n_ref:,} customers: {t_ref:7.2f} s")
    print(f"ratio grouped/ungrouped wall time:  {t_grouped / t_ref:7.2f}")
    print(f"ratio per customer:                 {(t_grouped / n) / (t_ref / n_ref):7.3f}")


def pnbd(x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> None:
    """Pareto/NBD on the stage's sample size, in weeks as the stage fits it."""
    n = FeaturesConfig().pnbd_fit_customers
    calls = []
    loglik = btyd_pnbd._pnbd_loglik

    def counted(params: np.ndarray, d: btyd_pnbd._Histories) -> tuple[float, np.ndarray]:
        calls.append(1)
        return loglik(params, d)

    btyd_pnbd._pnbd_loglik = counted
    start = time.process_time()
    model = btyd_pnbd.ParetoNBDModel().fit(x[:n], t_x[:n] / 7, age[:n] / 7)
    seconds = time.process_time() - start
    btyd_pnbd._pnbd_loglik = loglik
    fitted = ", ".join(f"{p}={getattr(model, p + '_'):.4g}" for p in ("r", "alpha", "s", "beta"))
    print(f"Pareto/NBD fit, {n:,} customers: {seconds:7.2f} s CPU, {len(calls)} evaluations")
    print(f"  {fitted}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    pnbd(*simulate_days(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
