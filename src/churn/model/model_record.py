"""The checksum record: which files make up a trained model, and their sha256.

The loader parses a model folder only after every file in the record matches,
so an edited booster, a swapped spec or a planted wrapper is refused before
anything reads it. The record is written when the model is trained and kept
outside the folder it vouches for: as a tag of the MLflow run that logged the
model (``churn.model_sha256.<model id>``), and for the local model directory
in ``models/train_run.json`` (key ``model_sha256``). A record inside the folder
would prove nothing, since whoever edits the folder could edit it too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from churn.model.model_files import BOOSTER_PATH, SPEC_PATH

# The MLflow "models from code" file, copied into the model folder's root.
CODE_PATH = "served_model.py"
MODEL_PATHS = (BOOSTER_PATH, SPEC_PATH, CODE_PATH)
TAG_PREFIX = "churn.model_sha256"
TRAIN_RUN_KEY = "model_sha256"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RecordError(ValueError):
    """The record is missing, malformed, or the files do not match it."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (boosters can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tag_key(model_id: str) -> str:
    """The run tag holding one logged model's record (a run may log several models)."""
    return f"{TAG_PREFIX}.{model_id}"


@dataclass(frozen=True)
class ModelRecord:
    """sha256 per file (paths relative to the model folder) and where the record came from."""

    files: Mapping[str, str]
    source: str

    @classmethod
    def of_folder(cls, folder: Path, paths: Iterable[str], source: str) -> ModelRecord:
        return cls({p: sha256_file(folder / p) for p in paths}, source)

    def to_json(self) -> str:
        return json.dumps(dict(self.files), sort_keys=True)

    @property
    def fingerprint(self) -> str:
        """sha256 of the record: one value naming exactly these files (the training run's tag)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def of_train_run(cls, path: Path) -> ModelRecord:
        """The record ``churn train`` wrote for the local model folder (``paths.train_run``)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise RecordError(f"{path} is not readable JSON (rerun `churn train`)") from None
        if not isinstance(data, dict) or TRAIN_RUN_KEY not in data:
            raise RecordError(f"{path} holds no checksum record (rerun `churn train`)")
        return cls.parse(data[TRAIN_RUN_KEY], str(path))

    @classmethod
    def parse(cls, value: Any, source: str) -> ModelRecord:
        """A record from its JSON text or mapping; anything unexpected is a RecordError."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise RecordError(f"the checksum record in {source} is not JSON") from None
        if not isinstance(value, dict) or not value:
            raise RecordError(f"the checksum record in {source} is not a mapping of files")
        for path, digest in value.items():
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise RecordError(f"the checksum record in {source} has no sha256 for {path!r}")
            if not _inside(path):
                raise RecordError(f"the checksum record in {source} names a bad path {path!r}")
        missing = [p for p in (BOOSTER_PATH, SPEC_PATH) if p not in value]
        if missing:
            raise RecordError(f"the checksum record in {source} lacks {', '.join(missing)}")
        return cls(dict(value), source)

    def read_verified(self, folder: Path) -> dict[str, bytes]:
        """Every recorded file's bytes, each read once and checked against its sha256.

        The caller parses these very bytes, so a file swapped between the check
        and the parse cannot slip through. A RecordError names the first file
        that is missing or differs.
        """
        contents: dict[str, bytes] = {}
        for path, digest in sorted(self.files.items()):
            target = folder / path
            if not target.is_file():
                raise RecordError(
                    f"{path} is missing (recorded by {self.source}): restore the model folder,"
                    " or retrain with `churn train`"
                )
            data = target.read_bytes()
            if hashlib.sha256(data).hexdigest() != digest:
                raise RecordError(
                    f"{path} does not match the sha256 recorded by {self.source}: the model"
                    " was changed after training (restore it, or retrain with `churn train`)"
                )
            contents[path] = data
        return contents


def _inside(path: Any) -> bool:
    """A relative path that stays inside the folder (no absolute paths, no ``..``)."""
    if not isinstance(path, str) or not path or "\\" in path:
        return False
    parts = PurePosixPath(path).parts
    return not PurePosixPath(path).is_absolute() and ".." not in parts and "" not in parts
