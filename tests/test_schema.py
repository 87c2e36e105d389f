"""Input schemas captured at registration, compare's schema rows, the
``require_compatible_schema`` gate, and the follower's verify-then-swap (in process)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from jupyreg import Registry, schema
from jupyreg.errors import InvalidArgument, PolicyViolation
from jupyreg.lifecycle import Policy
from jupyreg.schema import Input
from jupyreg.serving.follower import Follower

NAME = "churn"
RNG = np.random.default_rng(1)
FRAME = pd.DataFrame(RNG.normal(size=(60, 3)), columns=["age", "income", "tenure"])
TARGET = (FRAME["age"] > 0).astype(int)


def fitted(columns: list[str], c: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=c).fit(FRAME[columns], TARGET)


def register(reg, columns: list[str], *, example: bool = True, c: float = 1.0) -> int:
    example_frame = FRAME[columns].head(2) if example else None
    return reg.register(fitted(columns, c), NAME, input_example=example_frame).version


@pytest.fixture
def alice(sqlite_uri: str) -> Registry:
    """No model cards (written on entering Production): these tests promote often."""
    return Registry(sqlite_uri, user="alice", publish_cards=False)


@pytest.fixture
def bob(sqlite_uri: str) -> Registry:
    return Registry(sqlite_uri, user="bob", publish_cards=False)


def to_production(alice, bob, version: int) -> None:
    alice.transition(NAME, version, "Staging", reason="candidate")
    bob.approve(alice.request(NAME, version, "Production", reason="ship").id)


def test_breaking_changes_are_removed_retyped_or_newly_required_inputs() -> None:
    current = [Input("a", "double"), Input("b", "long"), Input("c", "string", required=False)]
    assert schema.breaking_changes(current, current) == []
    widened = [Input("a", "double"), Input("b", "double"), Input("d", "string", required=False)]
    assert schema.breaking_changes(current, widened) == []  # long -> double, optional added
    broken = [Input("a", "string"), Input("c", "string"), Input("e", "double")]
    assert schema.breaking_changes(current, broken) == [
        "input a changed type double -> string",
        "input b (long) was removed",
        "input c (string) is now required",
        "input e (double) is now required",
    ]


def test_policy_parses_require_compatible_schema_strictly() -> None:
    assert Policy.from_mapping({"require_compatible_schema": True}).require_compatible_schema
    assert Policy().to_dict()["require_compatible_schema"] is False
    with pytest.raises(InvalidArgument, match="require_compatible_schema must be true or false"):
        Policy.from_mapping({"require_compatible_schema": "yes"})


def test_registration_stores_the_signature_and_compare_shows_the_schema_diff(alice) -> None:
    first = register(alice, ["age", "income", "tenure"])
    second = register(alice, ["age", "income"], example=False)  # from feature_names_in_
    loaded = alice.load(NAME, version=first)
    assert list(loaded.input_example.columns) == ["age", "income", "tenure"]
    assert schema.summary(alice.get(NAME, second).tags["jupyreg.schema"]) == (
        "age:double, income:double"
    )
    frame = alice.compare(NAME)
    assert frame.loc["schema.age", "differs"] == False  # noqa: E712 - a numpy bool
    assert frame.loc["schema.tenure", first] == "double"
    assert pd.isna(frame.loc["schema.tenure", second]) and frame.loc["schema.tenure", "differs"]


def test_gate_refuses_production_for_a_schema_that_breaks_its_callers(alice, bob) -> None:
    v1 = register(alice, ["age", "income", "tenure"])
    to_production(alice, bob, v1)
    alice.set_policy(NAME, require_compatible_schema=True, reason="callers send 3 columns")
    narrower = register(alice, ["age", "income"])
    alice.transition(NAME, narrower, "Staging", reason="candidate")
    with pytest.raises(PolicyViolation, match=r"would break callers of Production v1: input"):
        alice.request(NAME, narrower, "Production", reason="fewer inputs")
    same = register(alice, ["age", "income", "tenure"], c=0.5)
    to_production(alice, bob, same)
    assert alice.holder(NAME) == same


def test_follower_swaps_a_good_version_and_refuses_broken_or_incompatible_ones(
    alice, bob, workdir: Path
) -> None:
    alerts: list[str] = []
    v1 = register(alice, ["age", "income", "tenure"])
    to_production(alice, bob, v1)
    follower = Follower(alice, NAME, alert=alerts.append, log=io.StringIO(), start=False)
    changes = []
    follower.on_change(lambda new, old: changes.append((old.version, new.version)))
    assert follower.version == v1 and follower.predict(FRAME.head(4)).shape == (4,)

    incompatible = register(alice, ["age", "income"])
    to_production(alice, bob, incompatible)
    assert follower.poll_once() is False and follower.version == v1
    assert "would break the callers of v1: input tenure (double) was removed" in alerts[-1]
    assert "Still serving churn v1" in alerts[-1]

    broken = register(alice, ["age", "income", "tenure"])
    files = alice._store.client.get_model_version_download_uri(NAME, str(broken))
    model_dir = Path(files.removeprefix("file://"))
    for file in model_dir.glob("model.*"):
        file.write_bytes(b"not a model")
    to_production(alice, bob, broken)
    assert follower.poll_once() is False and follower.version == v1
    assert "its model does not load" in alerts[-1]

    good = register(alice, ["age", "income", "tenure"], c=0.3)
    to_production(alice, bob, good)
    assert follower.poll_once() is True and follower.version == good
    assert changes == [(v1, good)]
    assert alerts[-1].startswith(f"now serving churn v{good} (Production; was v1)")
    assert "approved by bob (requested by alice): ship" in alerts[-1]
