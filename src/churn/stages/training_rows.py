"""The labelled snapshots `churn train` reads: all of them, or a hashed sample of customers.

At tens of millions of customers the labelled table (every customer at a dozen
cutoffs, ~60 columns) no longer fits the driver, and LightGBM gains little from
rows beyond a few million. ``train.max_rows`` caps what training reads: when the
table (a file, or the folder Spark writes) holds more rows, only customers
whose id hash falls below ``max_rows / rows`` of the hash range are kept, with
every cutoff of each kept customer (a customer is never half in the sample).
The file is streamed batch by batch, so only the sample is ever in memory. The
hash is pandas' fixed-key one, so the same customers are picked in every run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from churn.schema import CUSTOMER_ID
from churn.stages.inputs import input_file, read_dataset

log = logging.getLogger(__name__)


def training_snapshots(path: Path, max_rows: int | None) -> pd.DataFrame:
    """The features stage's labelled table at ``path``, sampled down to about ``max_rows``."""
    path = input_file(path, "features")
    dataset = ds.dataset(path, format="parquet", partitioning=None)
    total = dataset.count_rows()
    if max_rows is None or total <= max_rows:
        return read_dataset(path) if path.is_dir() else pd.read_parquet(path)
    share = max_rows / total
    threshold = np.uint64(min(share, 1.0) * float(np.iinfo(np.uint64).max))
    kept = [
        batch.filter(pa.array(_hashes(batch) < threshold))
        for batch in dataset.to_batches(batch_size=1_000_000)
    ]
    sample = pa.Table.from_batches(kept, schema=dataset.schema).to_pandas()
    sample = sample.sort_values(["cutoff", CUSTOMER_ID], kind="stable").reset_index(drop=True)
    log.info(
        "train: %s of %s labelled rows (a hashed %.1f %% of customers, train.max_rows=%s)",
        f"{len(sample):,}",
        f"{total:,}",
        100 * share,
        f"{max_rows:,}",
    )
    return sample


def _hashes(batch: pa.RecordBatch) -> np.ndarray:
    ids = batch.column(CUSTOMER_ID).to_numpy(zero_copy_only=False).astype(object)
    return pd.util.hash_array(ids, categorize=False)
