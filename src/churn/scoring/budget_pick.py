"""The budget pick: which customers to contact for the largest total expected gain under a
cap on contacts and/or on money, provably optimal wherever that can be shown in time.

Greedy by gain is wrong under a money cap (one 15.00 call may be worth less than three
5.00 offers), and a knapsack over customers is far too slow at this size. But costs come
from a handful of actions, and within one cost level the best picks are always the top
gains. So a pick is a count per cost level, and the problem is a small integer program
over those counts: maximise sum_l F_l(n_l), where F_l (the prefix sums of level l's gains,
best first) is concave, subject to sum n_l <= max_contacts and sum c_l n_l <= max_budget.

Enumerating count vectors (what this module used to do) costs the product of the levels'
caps: fine for three actions, hours for a fourth. Instead:

1. **Prices.** Relaxing both caps with a price per contact (lam) and per unit of money
   (mu) gives D(lam, mu) = lam K + mu B + sum_i max(0, g_i - lam - mu c_i), an upper bound
   on every pick for any prices >= 0 (the LP relaxation's dual). D is convex; nested
   bisection finds the best prices in a few milliseconds.
2. **A good pick.** Customers in order of reduced gain g - lam - mu c (the LP's order),
   the longest run that fits, then levels topped up while room is left.
3. **Windows.** Any pick's total is D minus non-negative penalties, one per level (the
   reduced gain it gives up or takes on below the price) plus the prices of unused room.
   A better pick than the good one must keep every level's penalty below D - good, which
   leaves a window of counts per level: a handful at scale, where the bound is tight.
4. **Polish.** When the windows are wide, HiGHS (scipy.optimize.milp) first finds the
   best pick within a few counts per level of the good one; that usually closes nearly
   all of the gap, and the windows shrink with its square root.
5. **Exact repair.** HiGHS solves the integer program over the windows, each F_l as cuts
   on its own epigraph variable (exact at whole counts), under what remains of the time
   limit. Stopped early, the best pick found is returned with the proven upper bound, so
   the optimality gap is known and reported rather than hidden.

A million customers with six actions take well under a second; see
benchmarks/targeting.py for the numbers and for where the time limit is hit.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

DEFAULT_MAX_SECONDS = 10.0  # the same default as targeting.max_seconds in params
_EPS = 1e-9  # money tolerance: a pick spending max_budget + 1e-9 still fits
_BISECTIONS = 60  # halvings per price: far below a cent of bound at any realistic scale
_ABS_TOLERANCE = 1e-6  # HiGHS's own absolute MIP gap: totals this close count as equal
_SOLVER_SHARE = 0.8  # of the time left, what HiGHS is given (it stops a little late)
_DIRECT_WIDTH = 200  # windows narrower than this in all go straight to the exact solve
_POLISH_ROUNDS = 3  # searches near the current pick before the exact solve
_POLISH_REACH = 10  # counts either side of the current pick, per level, in such a search
_POLISH_SHARE = 0.25  # of the time left, at most what one such search may take


@dataclass(frozen=True)
class Selection:
    """The pick, its total expected gain, and how far from optimal it can at most be."""

    chosen: npt.NDArray[np.bool_]  # one flag per input row
    total_gain: float
    upper_bound: float  # no pick under the caps has a larger total gain
    seconds: float
    stopped_early: bool  # the time limit ended the search before optimality was proven

    @property
    def gap(self) -> float:
        """How much more gain the best possible pick could have (0 when proven optimal)."""
        return 0.0 if self.exact else self.upper_bound - self.total_gain

    @property
    def exact(self) -> bool:
        return self.upper_bound - self.total_gain <= _tolerance(self.total_gain)

    def summary(self) -> dict[str, Any]:
        """The pick's record for the export summary (no timing: the same data gives the same
        summary, unless the time limit was hit)."""
        bound = self.total_gain if self.exact else self.upper_bound
        return {
            "exact": self.exact,
            "time_limit_hit": self.stopped_early,
            "targeted_expected_gain": round(self.total_gain, 2),
            "upper_bound": round(bound, 2),
            "optimality_gap": round(self.gap, 2),
            "optimality_gap_pct": round(100 * self.gap / bound, 4) if bound > 0 else 0.0,
        }


@dataclass(frozen=True)
class _Level:
    """Customers sharing one contact cost, best gain first, cut at what the caps allow."""

    cost: float
    rows: np.ndarray  # row numbers into the input
    gains: np.ndarray  # their gains, descending
    prefix: np.ndarray  # prefix[n] = total gain of the top n (len(rows) + 1 values)


def _tolerance(total: float) -> float:
    return _ABS_TOLERANCE + 1e-12 * abs(total)


def optimal_selection(
    gains: np.ndarray,
    costs: np.ndarray,
    max_contacts: int | None = None,
    max_budget: float | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Selection:
    """The subset with the largest total gain: at most ``max_contacts``, spending at most
    ``max_budget``; only positive finite gains are ever chosen (a loss never helps).

    Exact whenever optimality is proven within ``max_seconds``; otherwise the best pick
    found so far, with ``upper_bound`` saying how much better any pick could be. Within a
    cost level, equal gains are picked in row order.
    """
    start = time.monotonic()
    deadline = start + max_seconds
    gains = np.asarray(gains, dtype="float64")
    costs = np.asarray(costs, dtype="float64")
    chosen = np.zeros(len(gains), dtype=bool)
    eligible = np.isfinite(gains) & np.isfinite(costs) & (gains > 0) & (costs >= 0)
    contacts = math.inf if max_contacts is None else float(max_contacts)
    budget = math.inf if max_budget is None else float(max_budget)
    if not eligible.any() or max_contacts == 0:
        pass
    elif eligible.sum() <= contacts and costs[eligible].sum() <= budget + _EPS:
        chosen = eligible  # everyone worth contacting fits
    elif max_budget is None:  # only a head count: cost is irrelevant, the top gains win
        rows = np.flatnonzero(eligible)
        rows = rows[np.lexsort((rows, -gains[rows]))][: int(contacts)]
        chosen[rows] = True
    else:
        levels = _levels(gains, costs, eligible, max_contacts, max_budget)
        counts, upper, stopped = _best_counts(levels, max_contacts, max_budget, deadline)
        for n, level in zip(counts, levels, strict=True):
            chosen[level.rows[:n]] = True
        total = _value(levels, counts)
        return _selection(chosen, total, max(upper, total), start, stopped)
    total = float(gains[chosen].sum())
    return _selection(chosen, total, total, start, False)


def _selection(
    chosen: np.ndarray, total: float, upper: float, start: float, stopped: bool
) -> Selection:
    selection = Selection(chosen, total, upper, time.monotonic() - start, stopped)
    if not selection.exact:
        log.warning(
            "budget pick: %s after %.1f s with expected gain %.2f; the best possible is at"
            " most %.2f (optimality gap %.2f)",
            "stopped at the time limit (targeting.max_seconds)" if stopped else "not proven",
            selection.seconds,
            selection.total_gain,
            selection.upper_bound,
            selection.gap,
        )
    return selection


def _levels(
    gains: np.ndarray, costs: np.ndarray, eligible: np.ndarray, contacts: int | None, budget: float
) -> list[_Level]:
    """One level per distinct cost, without the customers no pick under the caps can reach."""
    levels = []
    for cost in np.unique(costs[eligible]):
        rows = np.flatnonzero(eligible & (costs == cost))
        cap = len(rows) if contacts is None else min(len(rows), contacts)
        if cost > 0:
            cap = min(cap, math.floor(budget / cost + _EPS))
        if cap <= 0:
            continue
        rows = rows[np.lexsort((rows, -gains[rows]))][:cap]  # best first, ties by position
        level_gains = gains[rows]
        prefix = np.concatenate([[0.0], np.cumsum(level_gains)])
        levels.append(_Level(float(cost), rows, level_gains, prefix))
    return levels


def _value(levels: list[_Level], counts: list[int]) -> float:
    return float(sum(level.prefix[n] for n, level in zip(counts, levels, strict=True)))


def _fits(levels: list[_Level], counts: list[int], contacts: int | None, budget: float) -> bool:
    spent = sum(n * level.cost for n, level in zip(counts, levels, strict=True))
    return (contacts is None or sum(counts) <= contacts) and spent <= budget + _EPS


def _best_counts(
    levels: list[_Level], contacts: int | None, budget: float, deadline: float
) -> tuple[list[int], float, bool]:
    """(count per level, upper bound on any pick's gain, whether the time limit stopped it)."""
    if not levels:
        return [], 0.0, False
    # The solver's first import takes a second or more: inside the time limit, not beyond it.
    importlib.import_module("scipy.optimize")
    lam, mu, bound = _prices(levels, contacts, budget)
    thresholds = [lam + mu * level.cost for level in levels]
    counts = _good_counts(levels, thresholds, contacts, budget)
    best = _value(levels, counts)
    for _ in range(_POLISH_ROUNDS):
        if bound - best <= _tolerance(best):
            return counts, best, False
        windows = _windows(levels, thresholds, bound - best + _tolerance(best))
        if sum(hi - lo for lo, hi in windows) <= _DIRECT_WIDTH:
            break
        # Polish first: the best pick within a few counts of this one is cheap to find and
        # usually closes most of the gap, and the windows shrink with the square root of it.
        near = [
            (max(lo, n - _POLISH_REACH), min(hi, n + _POLISH_REACH))
            for n, (lo, hi) in zip(counts, windows, strict=True)
        ]
        seconds = _POLISH_SHARE * (deadline - time.monotonic())
        if seconds <= 0:
            break
        found, _, _ = _solve_windows(levels, near, contacts, budget, seconds)
        if found is None or not _fits(levels, found, contacts, budget):
            break
        value = _value(levels, found)
        if value <= best + _tolerance(best):
            break
        counts, best = found, value
    if bound - best <= _tolerance(best):
        return counts, best, False
    windows = _windows(levels, thresholds, bound - best + _tolerance(best))
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return counts, bound, True
    found, window_bound, status = _solve_windows(levels, windows, contacts, budget, remaining)
    if found is not None and not _fits(levels, found, contacts, budget):
        log.warning("budget pick: the solver's pick %s breaks a cap; keeping the good pick", found)
        found = None
    if found is not None:
        value = _value(levels, found)
        if value > best:
            counts, best = found, value
        if status == 0:  # proven optimal within the windows, so overall
            return counts, best, False
    if status not in (0, 1):
        log.warning("budget pick: the solver stopped with status %s", status)
    # Picks outside the windows are worth less than the good pick, so the bound is the
    # larger of the two; and never above the price bound, whatever the solver reports.
    upper = min(bound, max(best, window_bound))
    return counts, upper, status == 1


def _counts_above(levels: list[_Level], thresholds: list[float]) -> list[int]:
    """Per level, how many gains are strictly above its threshold."""
    return [
        int(np.searchsorted(-level.gains, -t, side="left"))
        for level, t in zip(levels, thresholds, strict=True)
    ]


def _dual(
    levels: list[_Level], contacts: int | None, budget: float, lam: float, mu: float
) -> float:
    """D(lam, mu): the Lagrangian upper bound on any pick's total gain."""
    thresholds = [lam + mu * level.cost for level in levels]
    counts = _counts_above(levels, thresholds)
    total = mu * budget + (lam * contacts if contacts is not None else 0.0)
    for level, t, n in zip(levels, thresholds, counts, strict=True):
        total += float(level.prefix[n]) - t * n
    return total


def _contact_price(levels: list[_Level], contacts: int | None, mu: float) -> float:
    """The smallest price per contact at which, with money priced at mu, the customers
    whose gain beats their price fit the contact cap (0 when the cap does not bind)."""
    if contacts is None:
        return 0.0

    def wanted(lam: float) -> int:
        return sum(_counts_above(levels, [lam + mu * level.cost for level in levels]))

    if wanted(0.0) <= contacts:
        return 0.0
    low, high = 0.0, max(float(level.gains[0]) for level in levels)
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if wanted(middle) <= contacts:
            high = middle
        else:
            low = middle
    return high


def _prices(
    levels: list[_Level], contacts: int | None, budget: float
) -> tuple[float, float, float]:
    """(lam, mu, D(lam, mu)) near the minimum of D: for each money price the best contact
    price is exact, and the money price is bisected on the sign of D's slope."""
    best = (0.0, 0.0, math.inf)

    def slope(mu: float) -> float:
        nonlocal best
        lam = _contact_price(levels, contacts, mu)
        value = _dual(levels, contacts, budget, lam, mu)
        if value < best[2]:
            best = (lam, mu, value)
        counts = _counts_above(levels, [lam + mu * level.cost for level in levels])
        return budget - sum(n * level.cost for n, level in zip(counts, levels, strict=True))

    paid = [level for level in levels if level.cost > 0]
    if slope(0.0) < 0 and paid:
        low, high = 0.0, max(float(level.gains[0]) / level.cost for level in paid)
        slope(high)
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2
            if slope(middle) > 0:
                high = middle
            else:
                low = middle
    return best


def _good_counts(
    levels: list[_Level], thresholds: list[float], contacts: int | None, budget: float
) -> list[int]:
    """A feasible pick close to the bound: customers by reduced gain (the LP's order), the
    longest run that fits both caps, then each level topped up while room is left."""
    reduced = np.concatenate([level.gains - t for level, t in zip(levels, thresholds, strict=True)])
    level_of = np.repeat(np.arange(len(levels)), [len(level.rows) for level in levels])
    order = np.argsort(-reduced, kind="stable")  # stable: row order within a level kept
    level_costs = np.array([level.cost for level in levels])
    spent = np.cumsum(level_costs[level_of[order]])
    fits = spent <= budget + _EPS
    if contacts is not None:
        fits &= np.arange(1, len(order) + 1) <= contacts
    run = len(order) if fits.all() else int(np.argmin(fits))
    counts = np.bincount(level_of[order[:run]], minlength=len(levels)).tolist()
    while True:  # top up: the level whose next customer gains most per unit of room first
        added = False
        for i in sorted(
            (i for i in range(len(levels)) if counts[i] < len(levels[i].rows)),
            key=lambda i: -levels[i].gains[counts[i]] + thresholds[i],
        ):
            used = sum(counts)
            room = len(levels[i].rows) - counts[i]
            if contacts is not None:
                room = min(room, contacts - used)
            if levels[i].cost > 0:
                left = budget - sum(n * lv.cost for n, lv in zip(counts, levels, strict=True))
                room = min(room, math.floor(left / levels[i].cost + _EPS))
            if room > 0:
                counts[i] += room
                added = True
        if not added:
            return [int(n) for n in counts]


def _windows(levels: list[_Level], thresholds: list[float], slack: float) -> list[tuple[int, int]]:
    """Per level, the counts (lo, hi) whose penalty against the bound is at most ``slack``.

    The penalty of taking n is the reduced gain given up above the threshold plus the
    reduced loss taken on below it; it is convex in n, so the window is one range.
    """
    windows = []
    for level, t in zip(levels, thresholds, strict=True):
        reduced = level.gains - t
        taken_below = np.concatenate([[0.0], np.cumsum(np.maximum(-reduced, 0.0))])
        above = np.concatenate([[0.0], np.cumsum(np.maximum(reduced, 0.0))])
        penalty = taken_below + (above[-1] - above)
        inside = np.flatnonzero(penalty <= slack)
        windows.append((int(inside[0]), int(inside[-1])))
    return windows


def _money_units(costs: list[float], budget: float) -> tuple[list[float], float]:
    """The money row in whole units of the costs' common cent step when costs are on a cent
    grid (an integer row cannot be fooled by the solver's feasibility tolerance)."""
    cents = [c * 100 for c in costs]
    if all(abs(c - round(c)) <= 1e-6 for c in cents):
        step = 0
        for c in cents:
            step = math.gcd(step, round(c))
        if step > 0:
            return [round(c) / step for c in cents], math.floor((budget + _EPS) * 100 / step)
    return list(costs), budget + _EPS


def _solve_windows(
    levels: list[_Level],
    windows: list[tuple[int, int]],
    contacts: int | None,
    budget: float,
    seconds: float,
) -> tuple[list[int] | None, float, int]:
    """The best counts within the windows by HiGHS: (counts or None, upper bound, status),
    status as scipy.optimize.milp's: 0 proven optimal, 1 stopped at the time limit.

    Variables: d_l = n_l - lo_l (integer) and t_l <= F_l(lo_l + d_l) - F_l(lo_l), written
    as one cut per segment of the concave F_l (exact at integer d_l).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_levels = len(levels)
    constraints = _window_constraints(levels, windows, contacts, budget)
    widths = np.array([hi - lo for lo, hi in windows], dtype="float64")
    reach = np.array(
        [
            level.prefix[hi] - level.prefix[lo]
            for level, (lo, hi) in zip(levels, windows, strict=True)
        ]
    )
    result = milp(
        np.concatenate([np.zeros(n_levels), -np.ones(n_levels)]),
        integrality=np.concatenate([np.ones(n_levels), np.zeros(n_levels)]),
        bounds=Bounds(np.zeros(2 * n_levels), np.concatenate([widths, reach])),
        constraints=LinearConstraint(constraints.matrix(), -np.inf, constraints.upper()),
        # HiGHS notices its time limit between steps, up to a few tenths of a second late
        # on big windows: it gets most, not all, of what is left (see benchmarks/targeting.py).
        options={"time_limit": max(_SOLVER_SHARE * seconds, 0.01), "mip_rel_gap": 0.0},
    )
    window_bound = math.inf
    if result.mip_dual_bound is not None and np.isfinite(result.mip_dual_bound):
        base = _value(levels, [lo for lo, _ in windows])
        window_bound = base - float(result.mip_dual_bound)
    counts = None
    if result.x is not None:
        counts = [
            lo + round(float(d)) for d, (lo, _) in zip(result.x[:n_levels], windows, strict=True)
        ]
    return counts, window_bound, int(result.status)


class _Constraints:
    """The window program's rows ``A x <= upper``, added a block at a time, kept sparse.

    Columns are d_0..d_{L-1} (counts above each window's start), then t_0..t_{L-1}
    (each level's gain above its window's start).
    """

    def __init__(self, n_levels: int) -> None:
        self.n_levels = n_levels
        self.n_rows = 0
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []
        self._upper: list[np.ndarray] = []

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, upper: np.ndarray) -> None:
        """``len(upper)`` new rows; ``rows`` numbers each entry's row among them from 0."""
        self._rows.append(self.n_rows + rows)
        self._cols.append(cols)
        self._vals.append(vals)
        self._upper.append(upper)
        self.n_rows += len(upper)

    def matrix(self) -> Any:
        """A as a CSR matrix (scipy is imported here: its first import is slow)."""
        from scipy.sparse import coo_array

        return coo_array(
            (np.concatenate(self._vals), (np.concatenate(self._rows), np.concatenate(self._cols))),
            shape=(self.n_rows, 2 * self.n_levels),
        ).tocsr()

    def upper(self) -> np.ndarray:
        return np.concatenate(self._upper)


def _window_constraints(
    levels: list[_Level], windows: list[tuple[int, int]], contacts: int | None, budget: float
) -> _Constraints:
    """Each level's epigraph cuts, then the contact cap (if any), then the money cap, both
    net of what the windows' lower ends already take."""
    n_levels = len(levels)
    constraints = _Constraints(n_levels)
    for i, (level, (lo, hi)) in enumerate(zip(levels, windows, strict=True)):
        if hi > lo:
            _add_cuts(constraints, i, level, lo, hi)
    lower_used = sum(lo for lo, _ in windows)
    every_level = np.arange(n_levels)
    one_row = np.zeros(n_levels, dtype=every_level.dtype)
    if contacts is not None:
        upper = np.array([float(contacts - lower_used)])
        constraints.add(one_row, every_level, np.ones(n_levels), upper)
    units, limit = _money_units([level.cost for level in levels], budget)
    spent = sum(u * lo for u, (lo, _) in zip(units, windows, strict=True))
    constraints.add(one_row, every_level, np.array(units), np.array([float(limit - spent)]))
    return constraints


def _add_cuts(constraints: _Constraints, i: int, level: _Level, lo: int, hi: int) -> None:
    """One cut per step k of level ``i``'s window (F is concave, so the cuts are exact at
    whole counts): t_i - slope_k * d_i <= F(lo + k) - F(lo) - slope_k * k."""
    width = hi - lo
    slopes = level.gains[lo:hi]
    steps = np.arange(width)
    constraints.add(
        np.concatenate([steps, steps]),
        np.concatenate([np.full(width, constraints.n_levels + i), np.full(width, i)]),
        np.concatenate([np.ones(width), -slopes]),
        level.prefix[lo : lo + width] - level.prefix[lo] - slopes * steps,
    )
