"""Which model scored: the one type that names a model, for scores, lists and manifests.

A score table records the model behind it (``model_name``, ``model_version``,
``model_uri``), the nightly manifest records it too, and `churn export` reloads the
very model that scored to explain the list. An alias such as
``models:/churn-classifier@champion`` can move at any time, so a registry model is
resolved to its version once and later steps use the pinned URI
(``models:/churn-classifier/3``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from churn.errors import UserError

REGISTRY_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))?/?")


@dataclass(frozen=True)
class RegistryUri:
    """A ``models:/`` URI taken apart: a name and an alias, a version, or neither."""

    name: str
    alias: str | None
    version: str | None

    @property
    def names_a_version(self) -> bool:
        """Whether it picks one version (by alias or number), not the bare model name."""
        return bool(self.alias or self.version)


def registry_uri(uri: str) -> RegistryUri | None:
    """``uri`` as a registry reference; None for a folder or any other kind of URI."""
    found = REGISTRY_URI.fullmatch(uri)
    if found is None:
        return None
    return RegistryUri(found.group("name"), found.group("alias"), found.group("version"))


@dataclass(frozen=True)
class ModelIdentity:
    """Which model produced a score: the URI recorded and the registered name and version.

    ``requested`` is the URI asked for when ``uri`` is the pinned form of it (the
    nightly job records both); empty when the two are the same.
    """

    uri: str
    name: str = ""
    version: str = ""
    requested: str = ""

    @property
    def pinned_uri(self) -> str:
        """A URI that keeps meaning this exact model after an alias moves."""
        if self.uri.startswith("models:/") and self.name and self.version:
            return f"models:/{self.name}/{self.version}"
        return self.uri

    def pinned(self) -> ModelIdentity:
        """This identity recorded by its pinned URI, remembering the one asked for."""
        return ModelIdentity(self.pinned_uri, self.name, self.version, self.requested or self.uri)


def identify_model(uri: str, local_name: str = "") -> ModelIdentity:
    """Name and version behind a model URI; an alias is resolved through the registry.

    A model folder has no registry version; ``local_name`` names it (the registered
    name ``churn train`` recorded beside the local model, see churn.model.loader).
    """
    found = registry_uri(uri)
    if found is None:
        return ModelIdentity(uri=uri, name=local_name)
    version = found.version
    if found.alias:
        from mlflow.tracking import MlflowClient

        try:
            version = str(
                MlflowClient().get_model_version_by_alias(found.name, found.alias).version
            )
        except Exception as exc:  # MLflow raises several types for an unknown alias
            raise UserError(
                f"cannot resolve {uri!r} in the registry: {str(exc).splitlines()[0]}"
            ) from exc
    return ModelIdentity(uri=uri, name=found.name, version=version or "")
