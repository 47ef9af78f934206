"""How long the exact budgeted pick takes, against a plain sort of the same gains.

Run: .venv/bin/python benchmarks/targeting.py [n_candidates]

Three actions (15.00 / 5.00 / 0.50) under both a contact cap and a money cap, the
case scipy's MILP needed 497 s for at 29k candidates. The reference is one
``np.argsort`` of the gains in the same process (the floor for any "top gains"
pick); the ratio is the number to watch, not the absolute seconds.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from churn.scoring.targeting import optimal_selection


def main(n: int = 29_000) -> None:
    rng = np.random.default_rng(0)
    costs = rng.choice([15.0, 5.0, 0.5], size=n, p=[0.1, 0.4, 0.5])
    gains = rng.gamma(1.5, 4.0, size=n) * costs / 4 - costs * 0.5
    cases = {
        "contacts 5,000 + money 20,000": (5_000, 20_000.0),
        "money 20,000 only": (None, 20_000.0),
        "contacts 5,000 only": (5_000, None),
    }
    start = time.perf_counter()
    for _ in range(10):
        np.argsort(-gains, kind="stable")
    reference = (time.perf_counter() - start) / 10
    print(f"{n:,} candidates; reference argsort {reference * 1e3:.1f} ms")
    for name, (contacts, budget) in cases.items():
        start = time.perf_counter()
        chosen = optimal_selection(gains, costs, contacts, budget)
        took = time.perf_counter() - start
        print(
            f"  {name:32s} {took:7.3f} s = {took / reference:8.0f}x argsort;"
            f" {chosen.sum():,} picked, cost {costs[chosen].sum():,.2f},"
            f" gain {gains[chosen].sum():,.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 29_000)
