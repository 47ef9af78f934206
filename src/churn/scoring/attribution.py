"""Per-feature contributions behind each churn score, for plain-word reasons.

Exact TreeSHAP (LightGBM ``pred_contrib=True``) costs about 200x a bare
predict, too slow for every customer every night; this module is the one
place that decides how contributions are computed, so reasons, reports and
benchmarks all get the same numbers.

Small inputs (a target list, one customer on demand) get exact TreeSHAP. Large
ones get :class:`LeafAttribution`: a row's TreeSHAP vector in one tree depends
mostly on which leaf it reaches, so the mean exact vector of sample rows reaching
each (tree, leaf) is a cheap, faithful stand-in, and summing those vectors over
trees costs about one predict. Rows whose top reason is a near tie, where the
approximation is most likely to pick the wrong one, are sent back to exact
TreeSHAP, so the top reason agrees with exact for the share we ask for.
"""

from __future__ import annotations

from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.config import AttributionConfig

Matrix = pd.DataFrame | np.ndarray
ReasonKind = Literal["churn", "abs"]


def contributions(
    booster: lgb.Booster,
    matrix: Matrix,
    *,
    config: AttributionConfig | None = None,
    explainer: LeafAttribution | None = None,
) -> np.ndarray:
    """Raw-score contributions, shape (rows, features + 1); the last column is the bias.

    Each row sums to the booster's raw (log-odds) score for that row. Up to
    ``config.exact_max_rows`` rows are explained exactly; beyond that a
    :class:`LeafAttribution` is used: ``explainer`` if given (fitted once per
    model), otherwise one fitted on a sample of ``matrix`` itself.
    """
    config = config or AttributionConfig()
    if len(matrix) == 0:
        return np.zeros((0, matrix.shape[1] + 1))
    if len(matrix) <= config.exact_max_rows:
        return exact_contributions(booster, matrix)
    if explainer is not None:
        return explainer.transform(matrix)
    return LeafAttribution.from_config(config).fit_transform(booster, matrix)


def exact_contributions(booster: lgb.Booster, matrix: Matrix) -> np.ndarray:
    """Exact path-dependent TreeSHAP from LightGBM, as float64."""
    if len(matrix) == 0:
        return np.zeros((0, matrix.shape[1] + 1))
    return np.asarray(booster.predict(matrix, pred_contrib=True), dtype="float64")


def top_reason(contrib: np.ndarray, kind: ReasonKind = "churn") -> np.ndarray:
    """Index of each row's top reason.

    ``churn``: the feature pushing hardest towards churn (the largest contribution;
    the model predicts P(churned)); ``abs``: the largest contribution either way.
    """
    features = contrib[:, :-1]
    return np.argmax(np.abs(features) if kind == "abs" else features, axis=1)


def top_reason_agreement(
    approx: np.ndarray, exact: np.ndarray, kind: ReasonKind = "churn"
) -> float:
    """Share of rows whose top reason is the same under both attributions."""
    return float(np.mean(top_reason(approx, kind) == top_reason(exact, kind)))


def top_margin(contrib: np.ndarray) -> np.ndarray:
    """Gap between the largest and second-largest feature contribution of each row.

    A small gap means the top churn reason is a near tie, the rows where a cheap
    attribution most often names a different reason than exact TreeSHAP.
    """
    features = contrib[:, :-1]
    if features.shape[1] < 2:
        return np.full(len(features), np.inf)
    top_two = np.partition(features, -2, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


class LeafAttribution:
    """TreeSHAP approximated by per-(tree, leaf) mean exact vectors, exact for near ties.

    ``fit`` learns, from exact per-tree TreeSHAP of ``n_sample`` rows, the mean
    contribution vector of every (tree, leaf); leaves seen by few or no sample rows
    are shrunk towards their Saabas path credits (the change in node expected value
    along the path), with ``shrinkage`` pseudo-rows. Every such vector sums to the
    leaf's value, so a row's vectors summed over trees sum to its raw score.
    ``fit`` also learns, by leave-one-out on the sample, the top-two margin below
    which a row's approximate top reason is too unreliable: such rows are recomputed
    exactly, the least certain first, up to ``max_exact_share`` of the rows, so
    that about ``target_agreement`` of rows have the same top churn reason as exact
    TreeSHAP.
    """

    def __init__(
        self,
        n_sample: int = 2_000,
        shrinkage: float = 10.0,
        target_agreement: float = 0.95,
        max_exact_share: float = 0.15,
        chunk_rows: int = 4_096,
        seed: int = 0,
    ) -> None:
        self.n_sample = n_sample
        self.shrinkage = shrinkage
        self.target_agreement = target_agreement
        self.max_exact_share = max_exact_share
        self.chunk_rows = chunk_rows
        self.seed = seed

    @classmethod
    def from_config(cls, config: AttributionConfig) -> LeafAttribution:
        return cls(
            n_sample=config.n_sample,
            shrinkage=config.shrinkage,
            target_agreement=config.target_agreement,
            max_exact_share=config.max_exact_share,
            seed=config.seed,
        )

    # -- fitting -------------------------------------------------------------------

    def fit(self, booster: lgb.Booster, matrix: Matrix) -> LeafAttribution:
        """Learn the leaf table and the exact-fallback margin from a sample of ``matrix``.

        ``matrix`` should look like the rows to be explained (e.g. the scoring
        snapshot); only ``n_sample`` of its rows are used.
        """
        self._fit(booster, matrix)
        return self

    def fit_transform(self, booster: lgb.Booster, matrix: Matrix) -> np.ndarray:
        """Fit on a sample of ``matrix`` and explain all of it; sample rows come out exact."""
        positions, exact = self._fit(booster, matrix)
        rest = np.ones(len(matrix), dtype=bool)
        rest[positions] = False
        out = np.empty((len(matrix), self.n_features_ + 1))
        out[positions] = exact
        if rest.any():
            out[rest] = self.transform(_rows(matrix, np.flatnonzero(rest)))
        return out

    def _fit(self, booster: lgb.Booster, matrix: Matrix) -> tuple[np.ndarray, np.ndarray]:
        if booster.num_model_per_iteration() != 1:
            raise ValueError("LeafAttribution explains single-output (binary) models only")
        if self.chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        if self.shrinkage <= 0:
            raise ValueError("shrinkage must be positive (it stands in for unseen leaves)")
        if len(matrix) == 0:
            raise ValueError("cannot fit LeafAttribution on an empty matrix")
        n_features = booster.num_feature()
        if matrix.shape[1] != n_features:
            raise ValueError(f"matrix has {matrix.shape[1]} columns, the model {n_features}")
        rng = np.random.default_rng(self.seed)
        n = min(self.n_sample, len(matrix))
        positions = np.sort(rng.choice(len(matrix), size=n, replace=False))
        sample = _rows(matrix, positions)

        saabas, leaf_values, n_leaves = _saabas_credits(booster.dump_model(), n_features)
        n_trees, max_leaves, width = saabas.shape
        leaves = np.asarray(booster.predict(sample, pred_leaf=True), dtype=np.int64)
        leaves = leaves.reshape(n, n_trees)
        table = np.empty_like(saabas)
        exact = np.zeros((n, width))
        loo = np.zeros((n, width))  # leave-one-out estimate, to learn the margin honestly
        k = self.shrinkage
        unseen = 0
        for tree in range(n_trees):
            per_tree = np.asarray(
                booster.predict(sample, pred_contrib=True, start_iteration=tree, num_iteration=1),
                dtype="float64",
            )
            leaf = leaves[:, tree]
            sums = np.zeros((max_leaves, width))
            np.add.at(sums, leaf, per_tree)
            counts = np.bincount(leaf, minlength=max_leaves).astype("float64")
            unseen += int(np.sum(counts[: n_leaves[tree]] == 0))
            table[tree] = (sums + k * saabas[tree]) / (counts + k)[:, None]
            loo += (sums[leaf] - per_tree + k * saabas[tree, leaf]) / (counts[leaf] - 1 + k)[
                :, None
            ]
            exact += per_tree

        self.booster_ = booster
        self.n_features_ = n_features
        self.n_trees_ = n_trees
        self.max_leaves_ = max_leaves
        # Leaf value as an extra column: summed alongside, it gives the raw score exactly.
        self.table_ = np.concatenate([table, leaf_values[..., None]], axis=2).reshape(
            n_trees * max_leaves, width + 1
        )
        self.n_sample_ = n
        self.unseen_leaf_share_ = unseen / int(n_leaves.sum())
        self._learn_threshold(loo, exact)
        return positions, exact

    def _learn_threshold(self, loo: np.ndarray, exact: np.ndarray) -> None:
        agree = top_reason(loo) == top_reason(exact)
        margin = top_margin(loo)
        order = np.argsort(margin, kind="stable")
        n = len(order)
        # Sending the j least certain rows to exact makes them agree by construction.
        agree_from = np.concatenate([np.cumsum(agree[order][::-1])[::-1], [0]])
        expected = (np.arange(n + 1) + agree_from) / n
        cap = int(np.floor(self.max_exact_share * n))
        reached = np.flatnonzero(expected[: cap + 1] >= self.target_agreement)
        j = int(reached[0]) if reached.size else cap
        self.threshold_ = float(margin[order[j]]) if j < n else float("inf")
        self.approx_agreement_ = float(agree.mean())
        self.expected_agreement_ = float(expected[j])
        self.sample_exact_share_ = j / n

    # -- explaining ----------------------------------------------------------------

    def approximate(self, matrix: Matrix) -> np.ndarray:
        """Leaf-table contributions only (no exact fallback); rows sum to the raw score."""
        width = self.n_features_ + 1
        out = np.empty((len(matrix), width))
        offsets = np.arange(self.n_trees_, dtype=np.int64) * self.max_leaves_
        block = 8 * self.chunk_rows  # rows per pred_leaf call: bounds the leaf-index memory
        for start in range(0, len(matrix), block):
            part = _rows(matrix, np.arange(start, min(start + block, len(matrix))))
            leaves = np.asarray(self.booster_.predict(part, pred_leaf=True), dtype=np.int64)
            index = leaves.reshape(len(part), self.n_trees_) + offsets
            for lo in range(0, len(index), self.chunk_rows):
                rows = index[lo : lo + self.chunk_rows]
                acc = np.zeros((len(rows), width + 1))
                for tree in range(self.n_trees_):
                    acc += self.table_[rows[:, tree]]
                # Float clean-up: put any rounding gap to the raw score into the bias.
                acc[:, width - 1] += acc[:, width] - acc[:, :width].sum(axis=1)
                out[start + lo : start + lo + len(rows)] = acc[:, :width]
        return out

    def transform(self, matrix: Matrix) -> np.ndarray:
        """Contributions for every row: leaf table, exact TreeSHAP for near ties."""
        if len(matrix) == 0:
            return np.zeros((0, self.n_features_ + 1))
        out = self.approximate(matrix)
        redo = self.exact_rows(out)
        if redo.size:
            out[redo] = exact_contributions(self.booster_, _rows(matrix, redo))
        return out

    def exact_rows(self, approx: np.ndarray) -> np.ndarray:
        """Rows to recompute exactly: margin below the threshold, least certain first, capped."""
        margin = top_margin(approx)
        below = np.flatnonzero(margin < self.threshold_)
        cap = int(np.floor(self.max_exact_share * len(approx)))
        if below.size > cap:
            below = below[np.argsort(margin[below], kind="stable")[:cap]]
        return np.sort(below)


def _rows(matrix: Matrix, positions: np.ndarray) -> Matrix:
    return matrix.iloc[positions] if isinstance(matrix, pd.DataFrame) else matrix[positions]


def _saabas_credits(
    dump: dict[str, Any], n_features: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (tree, leaf): Saabas path credits (bias last) and the leaf value; leaves per tree.

    Walking root to leaf, each split credits its feature with the change in the
    node's expected value; the root's expected value is the bias. They sum to the
    leaf value, which is all a row in that leaf gets from the tree. Expected values
    are training-count-weighted means of the leaves below, as in LightGBM's TreeSHAP
    (not the nodes' ``internal_value``, which comes from gradient sums), so the bias
    matches exact TreeSHAP's and stumps come out exact.
    """
    trees = dump["tree_info"]
    max_leaves = max(int(t["num_leaves"]) for t in trees)
    credits = np.zeros((len(trees), max_leaves, n_features + 1))
    values = np.zeros((len(trees), max_leaves))
    n_leaves = np.array([int(t["num_leaves"]) for t in trees])
    for tree, info in enumerate(trees):
        root = info["tree_structure"]
        expected: dict[int, float] = {}
        _expected_value(root, expected)
        stack = [(root, np.zeros(n_features + 1))]
        stack[0][1][n_features] = expected[id(root)]
        while stack:
            node, acc = stack.pop()
            if "leaf_value" in node:
                leaf = int(node.get("leaf_index", 0))  # a single-leaf tree has no index
                credits[tree, leaf] = acc
                values[tree, leaf] = node["leaf_value"]
                continue
            for side in ("left_child", "right_child"):
                child = node[side]
                credit = acc.copy()
                credit[node["split_feature"]] += expected[id(child)] - expected[id(node)]
                stack.append((child, credit))
    return credits, values, n_leaves


def _expected_value(node: dict[str, Any], out: dict[int, float]) -> tuple[float, float]:
    """(expected value, training count) of ``node``, filling ``out`` for every node below."""
    if "leaf_value" in node:
        value, count = float(node["leaf_value"]), float(node.get("leaf_count", 0))
    else:
        left = _expected_value(node["left_child"], out)
        right = _expected_value(node["right_child"], out)
        count = left[1] + right[1]
        weights = (left[1], right[1]) if count > 0 else (1.0, 1.0)
        value = (weights[0] * left[0] + weights[1] * right[0]) / (weights[0] + weights[1])
    out[id(node)] = value
    return value, count
