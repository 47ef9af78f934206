"""How long the budget pick takes with 3 to 6 actions, against a plain sort of the same gains.

Run: .venv/bin/python benchmarks/targeting.py [--sizes 20000,200000,1000000]
     [--max-seconds 10] [--hard-seconds 2]

Two kinds of shop with 3 to 6 actions (0.50 email, 5 offer, 15 call, 40 visit, 80 and
120 premium gestures): "value tiers", churn risk and 12-month value drawn per customer and
the more valuable customers getting the dearer actions (expected gain = risk x value x
save rate - cost); and "issue 13", the old benchmark's shop (actions spread evenly, most
customers worth contacting), where one action more than three made the old exact pick
explode: 20k / 40k / 60k customers took 6 / 26 / 66 s with four costs, 200k did not finish
in 300 s. Each under a contact cap and a money cap together and under the money cap alone.
The reference is one stable ``np.argsort`` of the gains in the same process (the floor for
any "top gains" pick); the ratios are the numbers to watch, not the absolute seconds.

Then the time bound: "hard" shops whose actions have odd costs and nearly the same gain
per unit of money (a real knapsack: the budget cannot be filled exactly) under a short
``--hard-seconds`` limit, and one of them under limits from 0.1 to 4 s, showing that the
pick stops in time and the gap it then reports.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import time

import numpy as np

from churn.scoring.budget_pick import optimal_selection

# (cost, save rate) per action, cheapest first; a shop with L actions uses the first L.
ACTIONS = [(0.5, 0.05), (5.0, 0.15), (15.0, 0.30), (40.0, 0.40), (80.0, 0.50), (120.0, 0.55)]
HARD_COSTS = [29.29, 33.14, 39.61, 41.59, 50.36, 54.27]


def shop(n: int, n_actions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(gains, costs): the more a customer is worth, the dearer the action they get."""
    rng = np.random.default_rng(seed)
    risk = rng.beta(1.2, 3.0, n)
    value = rng.lognormal(4.0, 1.1, n)
    edges = np.quantile(value, np.linspace(0, 1, n_actions + 1)[1:-1])
    action = np.searchsorted(edges, value)
    cost = np.array([c for c, _ in ACTIONS[:n_actions]])[action]
    save = np.array([s for _, s in ACTIONS[:n_actions]])[action]
    return risk * value * save - cost, cost


def issue_shop(n: int, n_actions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The shop of the old benchmark and of issue 13: actions spread evenly, most customers
    worth contacting (the case where a fourth action made the old exact pick explode)."""
    rng = np.random.default_rng(seed)
    cost = rng.choice([c for c, _ in ACTIONS[:n_actions]], size=n)
    return rng.gamma(1.5, 4.0, size=n) * cost / 4 - cost * 0.5, cost


def hard_shop(n: int, n_actions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cost = rng.choice(HARD_COSTS[:n_actions], size=n)
    return cost * rng.normal(1.2, 0.05, size=n), cost


def hard_caps(n: int, costs: np.ndarray) -> tuple[int, float]:
    contacts = int(n * 0.28)
    return contacts, round(float(costs.mean()) * contacts * 0.8, 2)


def reference_seconds(gains: np.ndarray) -> float:
    start = time.perf_counter()
    for _ in range(5):
        np.argsort(-gains, kind="stable")
    return (time.perf_counter() - start) / 5


def run(
    label: str,
    gains: np.ndarray,
    costs: np.ndarray,
    contacts: int | None,
    budget: float,
    max_seconds: float,
    reference: float,
) -> float:
    start = time.perf_counter()
    pick = optimal_selection(gains, costs, contacts, budget, max_seconds)
    took = time.perf_counter() - start
    chosen = pick.chosen
    assert contacts is None or chosen.sum() <= contacts
    assert costs[chosen].sum() <= budget + 1e-6
    verdict = (
        "exact"
        if pick.exact
        else f"gap {pick.gap:,.4f} ({pick.gap / pick.upper_bound:.1e} of the bound)"
    )
    print(
        f"  {label:34s} {took:6.2f} s = {took / reference:6.1f}x argsort"
        f" = {took / max_seconds:5.2f} of the limit; {chosen.sum():>7,} picked,"
        f" gain {pick.total_gain:>13,.2f}, {verdict}"
        + ("; time limit hit" if pick.stopped_early else "")
    )
    return took / max_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000,1000000")
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--hard-seconds", type=float, default=2.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    importlib.import_module("scipy.optimize")  # the solver's import is not the pick's time
    worst = 0.0
    for n in sizes:
        for n_actions, (kind, make) in itertools.product(
            (3, 4, 5, 6), (("value tiers", shop), ("issue 13", issue_shop))
        ):
            gains, costs = make(n, n_actions)
            reference = reference_seconds(gains)
            print(
                f"{n:,} customers, {n_actions} actions, {kind} ({(gains > 0).sum():,} worth"
                f" contacting); reference argsort {reference * 1e3:.1f} ms"
            )
            budget = round(0.4 * n, 2)
            for label, contacts in (
                (f"contacts {n // 20:,} + money {budget:,.0f}", n // 20),
                (f"money {budget:,.0f} only", None),
            ):
                ratio = run(label, gains, costs, contacts, budget, args.max_seconds, reference)
                worst = max(worst, ratio)
    print(f"\nhard shops (odd costs, flat gain per cost), limit {args.hard_seconds:g} s:")
    for n in sizes:
        for n_actions in (3, 4, 5, 6):
            gains, costs = hard_shop(n, n_actions)
            reference = reference_seconds(gains)
            contacts, budget = hard_caps(n, costs)
            label = f"{n:,} x {n_actions}: contacts {contacts:,} + money {budget:,.0f}"
            ratio = run(label, gains, costs, contacts, budget, args.hard_seconds, reference)
            worst = max(worst, ratio)
    n = min(max(sizes), 200_000)
    gains, costs = hard_shop(n, 6)
    reference = reference_seconds(gains)
    contacts, budget = hard_caps(n, costs)
    print(f"\nthe time limit itself: the hard {n:,} x 6 shop under shorter and longer limits:")
    for seconds in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0):
        ratio = run(f"limit {seconds:g} s", gains, costs, contacts, budget, seconds, reference)
        worst = max(worst, ratio)
    print(f"\nslowest pick: {worst:.2f} of its time limit")


if __name__ == "__main__":
    main()
