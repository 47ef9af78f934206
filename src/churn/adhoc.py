"""Where an ad-hoc run writes, so that it never overwrites what DVC tracks.

`churn score`, `export` and `report` without options are DVC stages and write
the tracked outputs named in params.yaml ``paths:``. Given an option that
changes what they compute (another date or model, an export filter or format,
a comparison run), they answer a one-off question instead. Writing that
answer over a tracked file would make ``dvc status`` report a changed output
that the next ``dvc repro`` or ``dvc checkout`` silently puts back, and would
feed a list nobody reviewed to the stages downstream. So an ad-hoc answer goes
to ``--output``, or to a name derived from the options next to the tracked
file (``retention_targets.segment-at-risk.band-high.csv``,
``scores.as_of=2026-09-01.parquet``), and never onto a tracked path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.config import Params
from churn.errors import UserError

_NOT_NAME = re.compile(r"[^a-z0-9@_.-]+")
MAX_PART = 48  # characters of one name part; a long model path keeps its end


def slug(text: str) -> str:
    """``text`` as one file-name part: lower case, any other run of characters one ``-``.

    "At risk" -> "at-risk", "Can't lose them" -> "cant-lose-them", "runs:/ab12/model"
    -> "runs-ab12-model". Apostrophes go; other punctuation and spaces become ``-``.
    """
    part = _NOT_NAME.sub("-", re.sub(r"['\u2019]", "", text.lower())).strip("-.")
    return part[-MAX_PART:].lstrip("-.") or "-"


def model_part(uri: str) -> str:
    """A model URI or folder as a name part: the registry name and alias or version, or
    the folder's path (its tail when long)."""
    return slug(uri.removeprefix("models:/"))


def derived_path(tracked: Path, parts: Sequence[str]) -> Path:
    """``tracked`` with ``.part1.part2`` inserted before its suffix, in the same folder."""
    if not parts:
        raise ValueError("an ad-hoc name needs at least one part")
    return tracked.with_name(f"{tracked.stem}.{'.'.join(parts)}{tracked.suffix}")


def tracked_paths(params: Params) -> list[Path]:
    """Every path the pipeline owns: the files and folders in ``paths:``, and the nightly
    job's published tree."""
    owned = [Path(value) for value in params.paths.model_dump().values()]
    return [*owned, params.nightly.output_root]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def refuse_tracked(path: Path, tracked: Iterable[Path], option: str = "--output") -> Path:
    """``path`` unless it is (or lies inside) a tracked output; then one line saying so."""
    target = path.resolve()
    for owned in tracked:
        if _inside(target, owned.resolve()):
            raise UserError(
                f"{option} {path} would overwrite {owned}, which the pipeline tracks"
                " (params.yaml paths:); choose another file"
            )
    return path


def output_path(path: Path, suffixes: Sequence[str], tracked: Iterable[Path]) -> Path:
    """A checked ``--output``: one of ``suffixes`` (which sets the format), not tracked."""
    if path.suffix.lower() not in suffixes:
        raise UserError(
            f"--output {path} must end in {' or '.join(suffixes)} (the suffix sets the format)"
        )
    return refuse_tracked(path, tracked)


def destination(tracked: Path, chosen: Path) -> str:
    """Where a command wrote, for its log line; an ad-hoc run says the tracked file is safe."""
    if chosen == tracked:
        return str(chosen)
    return f"{chosen} (ad hoc; the tracked {tracked} is left as it was)"


def score_file(
    params: Params, as_of: dt.date | None, model: str | None, output: Path | None
) -> Path:
    """paths.scores for the DVC stage; else ``--output``, or a name derived from another
    date or model (``scores.as_of=2026-09-01.model=churn-classifier@champion.parquet``)."""
    if output is not None:
        return output_path(output, (".parquet",), tracked_paths(params))
    parts = [f"as_of={as_of.isoformat()}"] if as_of is not None else []
    if model is not None:
        parts.append(f"model={model_part(model)}")
    if not parts:
        return params.paths.scores
    return refuse_tracked(derived_path(params.paths.scores, parts), tracked_paths(params))


def report_file(params: Params, previous: str | None, output: Path | None) -> Path:
    """paths.report for the DVC stage; else ``--output``, or a name derived from the
    previous run (its as-of date): ``retention_report.previous=2026-09-01.html``."""
    if output is not None:
        return output_path(output, (".html", ".htm"), tracked_paths(params))
    if previous is None:
        return params.paths.report
    derived = derived_path(params.paths.report, [f"previous={slug(previous)}"])
    return refuse_tracked(derived, tracked_paths(params), "the derived name")


@dataclass(frozen=True)
class ExportFiles:
    """Where one export writes: the list per format, its summary, and the targets table
    (None for an ad-hoc export: list and summary only, the tracked table is left alone)."""

    lists: dict[str, Path]
    summary: Path
    table: Path | None

    @property
    def ad_hoc(self) -> bool:
        return self.table is None


def export_parts(filters: Mapping[str, Any], scores_as_of: str | None) -> list[str]:
    """The name parts of an ad-hoc list from the filters given as options, in the order
    they apply: ``{"segments": ["At risk"], "bands": ["high"]}`` -> ["segment-at-risk",
    "band-high"]. Several values join with ``+``; --format alone gives ["adhoc"]."""
    parts = [f"as_of={scores_as_of}"] if scores_as_of else []
    for field, key in (("segments", "segment"), ("bands", "band")):
        if field in filters:
            parts.append(f"{key}-{'+'.join(slug(str(v)) for v in filters[field])}")
    if "min_value" in filters:
        parts.append(f"min-value-{filters['min_value']:g}")
    if "actions" in filters:
        parts.append(f"action-{'+'.join(slug(str(v)) for v in filters['actions'])}")
    if "top_n" in filters:
        parts.append(f"top-{filters['top_n']}")
    return parts or ["adhoc"]


def export_output(params: Params, formats: Sequence[str], output: Path) -> dict[str, Path]:
    """``--output`` checked (suffix, not tracked, agrees with --format) as {format: path}."""
    output_path(output, (".csv", ".xlsx"), tracked_paths(params))
    chosen = output.suffix.lower().lstrip(".")
    if any(f != chosen for f in formats):
        raise UserError(
            f"--format {' '.join(sorted(set(formats)))} disagrees with --output {output}"
            " (its suffix sets the one format written; drop --format)"
        )
    return {chosen: output}


def export_files(
    params: Params, formats: Sequence[str], output: Path | None, parts: list[str] | None
) -> ExportFiles:
    """The tracked files (``parts`` None: the DVC stage), else ``--output`` or derived names;
    the summary goes beside the list (``<list>.summary.json``)."""
    paths = params.paths
    if parts is None:
        tracked = {"csv": paths.targets, "xlsx": paths.targets_xlsx}
        return ExportFiles(
            {f: tracked[f] for f in formats}, paths.export_summary, paths.targets_table
        )
    owned = tracked_paths(params)
    if output is not None:
        lists = export_output(params, formats, output)
    else:
        derived = {
            "csv": derived_path(paths.targets, parts),
            "xlsx": derived_path(paths.targets_xlsx, parts),
        }
        lists = {f: refuse_tracked(derived[f], owned, "the derived name") for f in formats}
    summary = next(iter(lists.values())).with_suffix(".summary.json")
    return ExportFiles(lists, refuse_tracked(summary, owned, "the summary"), None)
