"""churn.model.identity: the one type naming the model behind a score, pinned past aliases."""

from __future__ import annotations

import pytest

from churn.model.identity import ModelIdentity, RegistryUri, identify_model, registry_uri


def test_registry_uris_are_taken_apart_and_other_uris_are_not() -> None:
    assert registry_uri("models:/churn-classifier@champion") == RegistryUri(
        "churn-classifier", "champion", None
    )
    assert registry_uri("models:/churn-classifier/7/") == RegistryUri("churn-classifier", None, "7")
    bare = registry_uri("models:/churn-classifier")
    assert bare is not None and not bare.names_a_version
    for other in ("models/churn_model", "runs:/abc/model", "file:///tmp/model", "models:/a/b/c"):
        assert registry_uri(other) is None, other


def test_local_model_is_named_by_its_train_run_and_has_no_version() -> None:
    identity = identify_model("models/churn_model", "churn-classifier")
    assert identity == ModelIdentity("models/churn_model", "churn-classifier", "")
    assert identify_model("models/churn_model").name == ""
    assert identity.pinned_uri == "models/churn_model"
    assert identify_model("models:/churn-classifier/7").version == "7"


@pytest.mark.parametrize(
    ("identity", "pinned"),
    [
        (ModelIdentity("models:/m@champion", "m", "3"), "models:/m/3"),
        (ModelIdentity("models:/m/3", "m", "3"), "models:/m/3"),
        (ModelIdentity("models/churn_model", "m", ""), "models/churn_model"),
    ],
)
def test_pinned_keeps_the_uri_asked_for(identity: ModelIdentity, pinned: str) -> None:
    held = identity.pinned()
    assert (held.uri, held.name, held.version) == (pinned, identity.name, identity.version)
    assert held.requested == identity.uri
    assert held.pinned() == held  # pinning twice changes nothing
