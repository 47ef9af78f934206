"""The model a nightly run scores with: resolved once, pinned, or exit 14."""

from __future__ import annotations

import dataclasses
import warnings

from churn.config import Params
from churn.errors import UserError
from churn.model.loader import LoadedModel, ModelLoadError
from churn.stages.model import scoring_model


class ModelUnavailableError(UserError):
    """The model to score with cannot be resolved or loaded (registry down, no alias, bad URI)."""

    exit_code = 14


def default_model_uri(params: Params) -> str:
    """The champion: ``models:/<tracking.registered_model>@<nightly.model_alias>``."""
    return f"models:/{params.tracking.registered_model}@{params.nightly.model_alias}"


def load_pinned(uri: str, params: Params) -> LoadedModel:
    """The model behind ``uri``, recorded by its registry version for the whole run (an
    alias moved mid-run cannot mix two models in one list), the URI asked for beside it.

    Loaded by churn.model.loader (checksums first, no unpickling); ``paths.train_run``
    holds a local model folder's checksums.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = scoring_model(params, uri)
    except ModelLoadError as exc:  # its line already says what to do
        raise ModelUnavailableError(str(exc)) from exc
    except UserError as exc:
        raise ModelUnavailableError(
            f"{exc} (set the alias with `churn promote` or pass --model)"
        ) from exc
    return dataclasses.replace(loaded, identity=loaded.identity.pinned())
