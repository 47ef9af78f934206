"""The execution engine behind the Ibis expressions (DESIGN.md, Engines).

The feature code is written once in Ibis; this module is the only place that
knows which engine runs it. DuckDB is embedded and the default. PySpark runs
the same expressions on a Spark cluster (or ``local[2]`` on a laptop) for data
that outgrows one machine.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from churn.data.session import use_utc
from churn.errors import UserError

ENGINES = ("duckdb", "pyspark")
DEFAULT_SPARK_MASTER = "local[2]"
# Overrides `spark_master` in params.yaml, so one checkout can run locally and on a cluster.
SPARK_MASTER_ENV = "CHURN_SPARK_MASTER"

log = logging.getLogger(__name__)


def connect(
    engine: str,
    *,
    spark_master: str | None = None,
    spark_conf: Mapping[str, str] | None = None,
) -> BaseBackend:
    """An Ibis backend for ``engine``.

    DuckDB spills to disk, so data larger than RAM still runs on one machine.
    PySpark is for data that outgrows it; ``spark_master`` (params.yaml) says
    where Spark runs, see :func:`resolve_spark_master`; ``spark_conf`` adds
    Spark options (executor memory, JVM flags) when a new session is started.
    """
    if engine == "duckdb":
        backend = ibis.duckdb.connect()
        use_utc(backend.con)  # Ibis sets UTC today; the features must not depend on that
        return backend
    if engine == "pyspark":
        session = spark_session(resolve_spark_master(spark_master), spark_conf)
        return ibis.pyspark.connect(session)
    raise UserError(f"unknown engine {engine!r} (set engine: to one of {', '.join(ENGINES)})")


def resolve_spark_master(configured: str | None) -> str:
    """``CHURN_SPARK_MASTER``, else params.yaml ``spark_master``, else ``local[2]``.

    The environment wins so one checkout (and one DVC-tracked params.yaml) can
    run on a laptop and on a cluster without editing tracked files.
    """
    return os.environ.get(SPARK_MASTER_ENV) or configured or DEFAULT_SPARK_MASTER


def spark_session(master: str = DEFAULT_SPARK_MASTER, conf: Mapping[str, str] | None = None) -> Any:
    """A SparkSession configured so the feature expressions mean what they mean on DuckDB.

    - ``spark.sql.session.timeZone=UTC``: the features compare integer epoch
      seconds of naive timestamps, and Spark's ``unix_timestamp`` reads a
      timestamp in the session time zone; UTC makes it agree with DuckDB.
      (``ibis.pyspark.connect`` sets it too; setting it here also covers
      anything run on the session before Ibis wraps it.)
    - Arrow transfer: results reach pandas through Arrow instead of pickled rows.
    - Warehouse in a temp folder, removed at exit: a run must not leave
      ``spark-warehouse/`` in the project (a DVC workspace).
    - No UI, no console progress bars, log level ERROR: a batch step, not a
      notebook; the progress bars would interleave with the pipeline's log.
    - Few shuffle partitions on a local master: Spark's default of 200 is
      sized for clusters and only adds tasks on two cores; a cluster keeps it.

    ``conf`` is applied on top when the session is built. Spark allows one
    session per JVM, so a running session (a notebook's, or a previous
    ``connect``) is reused as is, apart from the two runtime options below
    that the features depend on.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise UserError(
            "engine: pyspark needs PySpark and Java 17 (pip install 'churn[spark]')"
        ) from exc
    session = SparkSession.getActiveSession()
    if session is None:
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise UserError("engine: pyspark needs Java 17 on PATH (or JAVA_HOME set)")
        warehouse = tempfile.mkdtemp(prefix="churn-spark-warehouse-")
        atexit.register(shutil.rmtree, warehouse, ignore_errors=True)
        builder = (
            SparkSession.builder.master(master)
            .appName("churn")
            .config("spark.sql.warehouse.dir", warehouse)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
        )
        if master.startswith("local"):
            builder = builder.config("spark.sql.shuffle.partitions", "4")
            # Local Python workers run this interpreter (its packages), not PATH's
            # python3; PySpark reads the variable when the context starts.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        for key, value in (conf or {}).items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        ship_package(session)
    session.conf.set("spark.sql.session.timeZone", "UTC")
    session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    log.info("spark: master %s, Spark %s", session.sparkContext.master, session.version)
    return session


def ship_package(session: Any) -> None:
    """Send this checkout's ``churn`` package to the executors (``addPyFile``).

    Feature, BTYD and scoring steps run as ``mapInPandas`` on the executors, so
    they must run the driver's code, not whatever version a cluster image holds.
    Third-party packages (pandas, NumPy, SciPy, LightGBM) must be on the cluster's
    Python already; the zip holds churn alone, a few hundred kB.
    """
    package = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="churn-spark-py-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    archive = shutil.make_archive(
        str(folder / "churn"), "zip", root_dir=package.parent, base_dir=package.name
    )
    session.sparkContext.addPyFile(archive)


def read_transactions(backend: BaseBackend, path: Path) -> ir.Table:
    """The canonical transactions Parquet, read by the engine itself (no pandas detour)."""
    if not path.exists():
        raise UserError(f"transactions not found: {path} (run `churn ingest` first)")
    return backend.read_parquet(path)


def limit_memory(backend: BaseBackend, memory_limit: str) -> None:
    """Make DuckDB spill to a private temp folder beyond ``memory_limit``; a no-op elsewhere.

    DuckDB's default spill folder for an in-memory database is ``.tmp`` in the
    working directory, i.e. inside the project (a DVC workspace); this one is
    removed at exit. Spark manages its own memory (``spark_conf``).
    """
    if backend.name != "duckdb":
        return
    con = backend.con
    try:
        con.execute("SET memory_limit = ?", [memory_limit])
    except Exception as exc:  # duckdb.Error; the message names the bad size
        raise UserError(
            f"features.memory_limit={memory_limit!r} is not a size such as '2GB'"
        ) from exc
    if not getattr(backend, "_churn_spill_dir", None):
        spill = tempfile.mkdtemp(prefix="churn-duckdb-spill-")
        atexit.register(shutil.rmtree, spill, ignore_errors=True)
        con.execute("SET temp_directory = ?", [spill])
        backend._churn_spill_dir = spill


@contextlib.contextmanager
def materialized(expr: ir.Table, *, shared: bool = False) -> Iterator[ir.Table]:
    """``expr`` computed once for the block, then dropped.

    Several queries read the same intermediate table; the engine would
    otherwise recompute it for each. DuckDB holds it in a temp table; Spark
    in a temporary view pinned by ``CACHE TABLE`` (computed once, spilled to
    disk as needed). Not ``Table.cache()``: on DuckDB, Ibis 12 with recent
    sqlglot emits ``DROP TABLE IF EXISTS`` without a name, and on PySpark it
    compiles the SQL before registering the in-memory tables the expression
    reads, so Spark cannot find them; for the first reason the drops are raw
    SQL. Other engines get the expression back and recompute it.

    ``shared``: on DuckDB a table of the connection's (in-memory) database instead of a
    temp table, which only its own connection sees: :func:`repeated_query` runs its
    queries on cursors of their own, so that two run at once.
    """
    backend = ibis.get_backend(expr)
    name = f"churn_tmp_{uuid.uuid4().hex}"
    if backend.name == "duckdb":
        backend.create_table(name, expr, temp=not shared)
        drops = [f'DROP TABLE IF EXISTS "{name}"']
    elif backend.name == "pyspark":
        backend.create_view(name, expr)
        backend.raw_sql(f"CACHE TABLE `{name}`")
        drops = [f"UNCACHE TABLE IF EXISTS `{name}`", f"DROP VIEW IF EXISTS `{name}`"]
    else:
        yield expr
        return
    try:
        yield backend.table(name)
    finally:
        for drop in drops:
            backend.raw_sql(drop)


def stands_alone(table: ir.Table) -> bool:
    """Whether a :func:`materialized` table outlives what it was computed from: a DuckDB
    table holds its rows; Spark's cached view still names the views it reads."""
    return ibis.get_backend(table).name == "duckdb"


@contextlib.contextmanager
def repeated_query(
    backend: BaseBackend, build: Callable[[ir.Table], ir.Table], example: pd.DataFrame
) -> Iterator[Callable[[pd.DataFrame], pd.DataFrame]]:
    """``run(frame)``: the query ``build(frame as a table)``, into pandas, for many frames.

    The feature stage runs one query per cutoff that differs only in a small
    input table; compiling the ~50-column Ibis expression to SQL cost about a
    quarter of a second each time. On DuckDB the expression is compiled once
    against a view (``example`` fixes its columns and types) and each run gives
    the view its frame on a cursor of its own, so runs on several threads do not
    wait for each other (the tables they read must be :func:`materialized`
    ``shared``); other engines build and compile it per run.
    """
    if backend.name != "duckdb":
        yield lambda frame: to_pandas(build(ibis.memtable(frame)))
        return
    name = f"churn_input_{uuid.uuid4().hex}"
    con = backend.con
    con.register(name, example)
    try:
        expr = build(backend.table(name))
        if expr.op().find(ops.InMemoryTable):
            # A cursor would not see the memtables Ibis registers on the connection.
            raise ValueError("repeated_query reads tables, not in-memory frames")
        sql = str(ibis.to_sql(expr, dialect="duckdb"))
        schema = expr.schema().to_pyarrow()

        def run(frame: pd.DataFrame) -> pd.DataFrame:
            with contextlib.closing(con.cursor()) as cursor:
                use_utc(cursor)  # a session setting: each cursor starts from the host's
                cursor.register(name, frame)
                # execute(), not a relation: a relation's Arrow table comes in a chunk per
                # thread and batch, which pandas copies into one block per column (~1 s in
                # all at 10 M transactions, on the path every cutoff waits for);
                # execute() hands over batches of a million rows, so a cutoff is mostly
                # one chunk and its numeric columns convert without a copy.
                table = cursor.execute(sql).to_arrow_table()
            return arrow_to_pandas(table.cast(schema))

        yield run
    finally:
        con.unregister(name)


@contextlib.contextmanager
def concurrent_queries(backend: BaseBackend) -> Iterator[int]:
    """How many :func:`repeated_query` runs to keep going at once, for the block.

    Two on DuckDB (one on a single thread), the engine's threads shared out among
    them: ``threads`` is one fewer, as each run's own thread works on its query
    too. One cutoff's query (~1 s of joins and a sort of ~0.8 M rows) did ~10 %
    more work split among threads, and beside the Python work of the previous
    cutoff two queries on one thread each kept both cores busier: in paired runs
    of the 10 M-transaction benchmark the stage took 0.25-1.6 s less in five of six.
    The setting is the caller's again after the block. Other engines: one at a time.
    """
    if backend.name != "duckdb":
        yield 1
        return
    con = backend.con
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    if threads < 2:
        yield 1
        return
    con.execute(f"SET threads = {threads - 1}")
    try:
        yield 2
    finally:
        con.execute(f"SET threads = {threads}")


def to_pandas(expr: ir.Table) -> pd.DataFrame:
    """Execute ``expr`` into pandas through Arrow.

    Ibis' own ``to_pandas`` spent ~30 % of the feature stage turning string ids
    into Python objects; Arrow's conversion is columnar and, with
    ``self_destruct``, frees each Arrow column as soon as it is converted.
    """
    return arrow_to_pandas(expr.to_pyarrow())


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas, releasing the Arrow buffers while converting."""
    return table.to_pandas(self_destruct=True, split_blocks=True)
