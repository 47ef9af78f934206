"""The features stage gives the same bytes on any machine: threads, BLAS kernel, SIMD.

`make run` on a fresh clone must reproduce the committed dvc.lock, so each
feature table must be a function of the transactions and params alone. Each run
below is the real `churn features` in its own process (the BLAS kernel and
NumPy's SIMD choice are fixed when a process loads them) under another host
setting: OpenBLAS kernel (OPENBLAS_CORETYPE) and thread counts, OpenMP threads,
DuckDB threads, and NumPy without its AVX-512/AVX2 loops (as on an older or
smaller CPU). The BG/NBD fit turned a last-bit difference from any of them into
~1e-7 in every BTYD column.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthetic import canonical_transactions

OUTPUTS = (
    "data/features/train.parquet",
    "data/features/score.parquet",
    "data/features/calendar.json",
    "data/features/rfm_edges.json",
)
# `churn features` with every DuckDB connection the stage opens set to N threads.
DRIVER = """
import sys
from churn.cli import main
from churn.features import backend

threads = int(sys.argv[1])
connect = backend.connect

def connect_with_threads(*args, **kwargs):
    con = connect(*args, **kwargs)
    con.con.execute(f"SET threads = {threads}")
    return con

backend.connect = connect_with_threads
main(["features"])
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def _numpy_simd_found() -> list[str]:
    """NumPy's dispatch targets above its baseline that this CPU runs (X86_V3, ...)."""
    found = np.show_config(mode="dicts")["SIMD Extensions"]["found"]  # type: ignore[func-returns-value]
    return [str(name) for name in found]


def _settings() -> dict[str, tuple[int, dict[str, str]]]:
    """Name -> (DuckDB threads, environment) for each run; the first is the reference."""
    avx512 = "avx512f" in _cpu_flags()
    return {
        "reference": (1, {}),
        "old kernel, one thread": (
            4,
            {
                "OPENBLAS_CORETYPE": "Prescott",
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
            },
        ),
        "wide kernel, no NumPy SIMD": (
            2,
            {
                "OPENBLAS_CORETYPE": "SkylakeX" if avx512 else "Haswell",
                "OPENBLAS_NUM_THREADS": "2",
                "OMP_NUM_THREADS": "3",
                "NPY_DISABLE_CPU_FEATURES": " ".join(_numpy_simd_found()),
            },
        ),
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Transactions and params, copied into one folder per run."""
    folder = tmp_path_factory.mktemp("features-input")
    transactions = canonical_transactions(seed=21, n_customers=1_500)
    transactions.to_parquet(folder / "transactions.parquet", index=False)
    params = {
        "paths": {"transactions": "data/interim/transactions.parquet"},
        "snapshots": {"n_train_cutoffs": 4},
        "features": {"btyd_fit_customers": 1_000},  # the hashed sample as well
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder


def _run(project: Path, workdir: Path, threads: int, extra: dict[str, str]) -> dict[str, str]:
    (workdir / "data/interim").mkdir(parents=True)
    (workdir / "params.yaml").write_bytes((project / "params.yaml").read_bytes())
    (workdir / "data/interim/transactions.parquet").write_bytes(
        (project / "transactions.parquet").read_bytes()
    )
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "NPY_"))}
    env = {**inherited, "OMP_NUM_THREADS": "2", **extra}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(threads)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BG/NBD fit failed" not in proc.stderr
    return {name: hashlib.sha256((workdir / name).read_bytes()).hexdigest() for name in OUTPUTS}


def test_features_are_the_same_bytes_under_any_threads_and_kernel(
    project: Path, tmp_path: Path
) -> None:
    hashes = {
        name: _run(project, tmp_path / str(i), threads, env)
        for i, (name, (threads, env)) in enumerate(_settings().items())
    }
    reference = hashes.pop("reference")
    for name, got in hashes.items():
        differing = [output for output in OUTPUTS if got[output] != reference[output]]
        assert not differing, f"{name}: {', '.join(differing)} differ from the reference run"
