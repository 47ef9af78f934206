"""The one way churn loads a model: check the training run's checksums, then parse data.

Score, explain, export, evaluate, promote and the nightly job all load through
``load_churn_model`` (``load_model`` also says which model it is, churn.model.identity).
It never unpickles and never runs code from the model folder: not
``mlflow.pyfunc.load_model`` either, which would run the folder's ``served_model.py``.
It finds the checksum record the training run left outside the folder
(churn.model.model_record), verifies every recorded file, and only then parses the
booster text and the JSON spec. Models pickled by older versions
(``python_model.pkl``) are refused with a line saying to retrain.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from churn.errors import UserError
from churn.model.churn_model import ChurnModel
from churn.model.identity import ModelIdentity, identify_model, registry_uri
from churn.model.model_files import BOOSTER_PATH, SPEC_PATH, ModelFormatError, model_from_bytes
from churn.model.model_record import TRAIN_RUN_KEY, ModelRecord, RecordError, tag_key

_LOGGED_MODEL = re.compile(r"models:/(?P<id>m-[0-9a-f]+)/?")
_REMOTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")
PICKLE_FILE = "python_model.pkl"
MLMODEL_FILE = "MLmodel"
_MLMODEL_MAX_BYTES = 1 << 20
RETRAIN = "retrain it with `churn train` (and `churn promote` for the registry)"


class ModelLoadError(UserError):
    """The model cannot be loaded safely: not found, pickled, unrecorded or changed."""


@dataclass(frozen=True)
class LoadedModel:
    """A model and which one it is (``identity.pinned_uri`` is what was loaded)."""

    model: ChurnModel
    identity: ModelIdentity


def load_model(uri: str, train_run: Path | None) -> LoadedModel:
    """The model behind ``uri`` and its identity: an alias is resolved once, and the
    version it pointed to is what loads, so a move mid-run cannot mix two models.

    A model folder is named by the registered name in ``train_run`` (``paths.train_run``).
    """
    identity = identify_model(uri, _registered_name(train_run))
    return LoadedModel(load_churn_model(identity.pinned_uri, train_run), identity)


def _registered_name(train_run: Path | None) -> str:
    """The registered name `churn train` recorded; "" when there is none. Only names the
    model: ``load_churn_model`` says so in one line when the record is unreadable."""
    if train_run is None or not train_run.exists():
        return ""
    try:
        data = json.loads(train_run.read_text())
    except (OSError, ValueError):
        return ""
    return str(data.get("registered_model") or "") if isinstance(data, dict) else ""


def load_churn_model(uri: str, train_run: Path | None = None) -> ChurnModel:
    """The churn model behind ``uri``: a model folder, or any MLflow model URI.

    ``train_run`` is the local training record (``paths.train_run``): it holds
    the checksums of the local model directory, which has no MLflow run of its
    own to ask. Registry URIs (``models:/name@alias``, ``models:/name/3``) are
    checked against the run that logged the version; other remote URIs and
    downloaded model folders against the run their MLmodel file names.
    """
    try:
        registered = registry_uri(uri)
        if registered is not None and registered.names_a_version:
            return _load_registered(registered.name, registered.alias, registered.version)
        if uri.startswith("file:"):
            return _load_folder(Path(unquote(urlparse(uri).path)), train_run)
        if _REMOTE.match(uri):
            with tempfile.TemporaryDirectory(prefix="churn-model-") as scratch:
                return _load_folder(_download(uri, Path(scratch)), None)
        return _load_folder(Path(uri), train_run)
    except (RecordError, ModelFormatError, _RefusedError) as exc:
        raise ModelLoadError(f"cannot load model {uri!r}: {exc}") from None


class _RefusedError(Exception):
    """A reason to refuse, prefixed with the URI by ``load_churn_model``."""


def _load_folder(folder: Path, train_run: Path | None) -> ChurnModel:
    if not folder.is_dir():
        raise _RefusedError(
            "no such model folder (pass the folder `churn train` wrote, or a models:/ URI)"
        )
    meta = _read_mlmodel(folder / MLMODEL_FILE)
    if (folder / PICKLE_FILE).exists() or _pickled(meta):
        raise _RefusedError(_old_format())
    run_id, model_id = meta.get("run_id"), meta.get("model_id")
    if isinstance(run_id, str) and isinstance(model_id, str) and run_id and model_id:
        record = _run_record(run_id, model_id)  # a model folder downloaded from MLflow
    elif train_run is not None:
        record = _train_run_record(train_run)
    else:
        record = None
    if record is None:
        raise _RefusedError(_no_record())
    return _model_from(record, folder)


def _load_registered(name: str, alias: str | None, version: str | None) -> ChurnModel:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    try:
        if alias:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, str(version))
        base = client.get_model_version_download_uri(name, found.version)
    except MlflowException as exc:
        raise _RefusedError(_first_line(exc)) from None
    model_id = found.model_id or _logged_model_id(found.source)
    record = None
    if found.run_id and model_id:
        record = _run_record(found.run_id, model_id)
    if record is None:
        raise _RefusedError(_old_format() if _registered_pickled(base) else _no_record())
    with tempfile.TemporaryDirectory(prefix="churn-model-") as scratch:
        folder = Path(scratch)
        for path in record.files:
            with contextlib.suppress(_RefusedError):  # read_verified() names a missing file
                _download_file(f"{base.rstrip('/')}/{path}", (folder / path).parent)
        return _model_from(record, folder)


def _model_from(record: ModelRecord, folder: Path) -> ChurnModel:
    """Check every recorded file, then parse the very bytes that were checked."""
    contents = record.read_verified(folder)
    return model_from_bytes(contents[BOOSTER_PATH], contents[SPEC_PATH])


def _logged_model_id(source: str | None) -> str | None:
    """A version registered from a logged model's URI keeps the model id in its source."""
    found = _LOGGED_MODEL.fullmatch(source or "")
    return None if found is None else found.group("id")


def _run_record(run_id: str, model_id: str) -> ModelRecord | None:
    """The record tagged on the run that logged the model; None when there is none."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        tags = MlflowClient().get_run(run_id).data.tags
    except MlflowException as exc:
        raise _RefusedError(f"cannot read its training run {run_id}: {_first_line(exc)}") from None
    value = tags.get(tag_key(model_id))
    return None if value is None else ModelRecord.parse(value, f"MLflow run {run_id}")


def _train_run_record(path: Path) -> ModelRecord | None:
    """The record ``churn train`` wrote beside the local model directory."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise _RefusedError(f"{path} is not readable JSON (rerun `churn train`)") from None
    if not isinstance(data, dict) or TRAIN_RUN_KEY not in data:
        return None
    run = data.get("run_id")
    return ModelRecord.parse(data[TRAIN_RUN_KEY], f"{path}" + (f" (run {run})" if run else ""))


def _read_mlmodel(path: Path) -> dict[str, Any]:
    """The folder's MLmodel as data (YAML safe_load: no tags, no objects); {} when absent."""
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        text = handle.read(_MLMODEL_MAX_BYTES + 1)
    if len(text) > _MLMODEL_MAX_BYTES:
        raise _RefusedError(f"{MLMODEL_FILE} is larger than {_MLMODEL_MAX_BYTES} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise _RefusedError(f"{MLMODEL_FILE} is not valid YAML") from None
    return data if isinstance(data, dict) else {}


def _pickled(meta: dict[str, Any]) -> bool:
    """An MLmodel whose pyfunc flavour is a cloudpickled python_model (the old format)."""
    flavors = meta.get("flavors")
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    return isinstance(pyfunc, dict) and (
        "python_model" in pyfunc or pyfunc.get("loader_module") == "mlflow.pyfunc.model"
    )


def _registered_pickled(base: str) -> bool:
    """Whether a registered version without a record is an old pickled churn model."""
    with tempfile.TemporaryDirectory(prefix="churn-model-") as scratch:
        try:
            _download_file(f"{base.rstrip('/')}/{MLMODEL_FILE}", Path(scratch))
        except _RefusedError:
            return False
        return _pickled(_read_mlmodel(Path(scratch) / MLMODEL_FILE))


def _download(uri: str, folder: Path) -> Path:
    """``uri`` downloaded into ``folder``, without MLflow's progress bar on stderr (a
    refusal is one line there, and a nightly log is no place for bars)."""
    import mlflow.artifacts
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    previous = os.environ.get(name)
    os.environ[name] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    except Exception as exc:  # MLflow raises many types for "not found"
        raise _RefusedError(_first_line(exc)) from None
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _download_file(uri: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _download(uri, folder)


def _old_format() -> str:
    return (
        f"it is in the old pickled format ({PICKLE_FILE}), which churn no longer loads"
        f" because unpickling can run any code; {RETRAIN}"
    )


def _no_record() -> str:
    return f"its training run recorded no checksums for it, so it cannot be verified; {RETRAIN}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
