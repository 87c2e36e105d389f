"""Bad input to jupyreg's server endpoints and to a policy is a named 400, never a crash.

``Actions`` (the logic behind ``POST /api/2.0/jupyreg/<action>``) runs in-process here on
an embedded SQLite registry, as a server runs it on its own store; every refusal must be
``InvalidArgument`` (HTTP 400 ``INVALID_PARAMETER_VALUE``) naming the field, and must
leave the registry exactly as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.server.auth.permissions import get_permission

from jupyreg import Registry
from jupyreg.errors import InvalidArgument, NotFound, PermissionDenied, RegistryError, http_status
from jupyreg.lifecycle import MAX_TEXT, Policy
from jupyreg.server.actions import ACTIONS, Actions
from tests.conftest import model_state, schema_template

NAME = "validated"
FUZZED = "fuzzed"  # the in-process fuzz may change this one
README = Path(__file__).resolve().parent.parent / "README.md"


# Policy.from_mapping -----------------------------------------------------------------


def _readme_policy() -> dict[str, Any]:
    text = README.read_text()
    start = text.index("```toml\n[tool.jupyreg.policy]") + len("```toml\n")
    return tomllib.loads(text[start : text.index("```", start)])["tool"]["jupyreg"]["policy"]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        Policy().to_dict(),
        {"approvals": {"Production": 1}, "require_clean_git": True, "thresholds": ["a >= 1"]},
        {"approvals": {"production": 2, "STAGING": 1}},
        {"approvals": {}},
        {"approvals": {"Production": 0}},
        {"thresholds": "test.auc >= 0.85"},
        {"thresholds": ["val.auc > 0.7", "test.loss <= 1e-3", "latency/p99 < 250"]},
        {"exclusive": ["Production", "staging"]},
        {"exclusive": "production"},
        {"gated_stages": ["production", "Staging"]},
        {"not_worse_than_production": ["test.auc"]},
        {"allow_self_approval": True, "require_data_hashes": False},
        {"require_test_metrics": True},
    ],
)
def test_the_documented_policy_shapes_are_accepted(raw: dict[str, Any]) -> None:
    policy = Policy.from_mapping(raw)
    assert Policy.from_mapping(policy.to_dict()) == policy
    assert Policy.from_mapping(json.loads(json.dumps(policy.to_dict()))) == policy


def test_the_readme_policy_is_accepted() -> None:
    policy = Policy.from_mapping(_readme_policy())
    assert policy.require_clean_git and policy.thresholds == ("test.auc >= 0.85",)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"approvals": {"Production": "abc"}}, "approvals"),
        ({"approvals": {"Production": "1"}}, "approvals"),
        ({"approvals": {"Production": -1}}, "approvals"),
        ({"approvals": {"Production": 101}}, "approvals"),
        ({"approvals": {"Production": 10**30}}, "approvals"),
        ({"approvals": {"Production": 10**5000}}, "approvals"),
        ({"approvals": {"Production": True}}, "approvals"),
        ({"approvals": {"Production": 1.0}}, "approvals"),
        ({"approvals": {"Production": math.nan}}, "approvals"),
        ({"approvals": {"Production": math.inf}}, "approvals"),
        ({"approvals": {"Production": None}}, "approvals"),
        ({"approvals": {"gold": 1}}, "approvals.*unknown stage 'gold'"),
        ({"approvals": {None: 1}}, "approvals"),
        ({"approvals": {"Production": 1, "production": 2}}, "approvals names Production twice"),
        ({"approvals": [1]}, "approvals"),
        ({"approvals": "Production=1"}, "approvals"),
        ({"approvals": None}, "approvals"),
        ({"exclusive": 5}, "exclusive"),
        ({"exclusive": True}, "exclusive"),
        ({"exclusive": None}, "exclusive"),
        ({"exclusive": {"Production": 1}}, "exclusive"),
        ({"exclusive": []}, "exclusive must list Production"),
        ({"exclusive": ["Staging"]}, "exclusive must list Production"),
        ({"exclusive": ["Production", "Archived"]}, "exclusive: Archived"),
        ({"exclusive": ["Production", "None"]}, "exclusive: None"),
        ({"exclusive": ["Production", None]}, "exclusive"),
        ({"gated_stages": [None]}, "gated_stages"),
        ({"gated_stages": [1]}, "gated_stages"),
        ({"gated_stages": ["gold"]}, "gated_stages.*unknown stage"),
        ({"gated_stages": "x" * 10_000}, "gated_stages"),
        ({"gated_stages": 3}, "gated_stages"),
        ({"thresholds": ["test.auc >= 1e999999"]}, "not a finite number"),
        ({"thresholds": ["test.auc >= -1e999999"]}, "not a finite number"),
        ({"thresholds": ["test.auc >= 1e5e5"]}, "not a number"),
        ({"thresholds": ["auc is high"]}, "METRIC OP NUMBER"),
        ({"thresholds": 5}, "thresholds"),
        ({"thresholds": [5]}, "thresholds"),
        ({"thresholds": [None]}, "thresholds"),
        ({"thresholds": {"test.auc": 0.9}}, "thresholds"),
        ({"thresholds": ["m" * 300 + " >= 1"]}, "thresholds.*at most 250 are allowed"),
        ({"thresholds": ["a >= 1"] * 101}, "thresholds has 101 entries"),
        ({"not_worse_than_production": [None]}, "not_worse_than_production"),
        ({"not_worse_than_production": [""]}, "not_worse_than_production"),
        ({"not_worse_than_production": [" "]}, "not_worse_than_production"),
        ({"not_worse_than_production": ["a\x00b"]}, "not_worse_than_production.*NUL"),
        ({"not_worse_than_production": 1}, "not_worse_than_production"),
        ({"require_clean_git": "yes"}, "require_clean_git must be true or false"),
        ({"require_clean_git": 1}, "require_clean_git must be true or false"),
        ({"allow_self_approval": None}, "allow_self_approval must be true or false"),
        ({"require_data_hashes": []}, "require_data_hashes"),
        ({"require_test_metrics": {}}, "require_test_metrics"),
        ({"colour": "red"}, "unknown policy setting.*colour"),
        ({"x" * 100_000: 1}, "unknown policy setting"),
        ({1: 2}, "unknown policy setting"),
        ([], "must be a JSON object"),
        ("abc", "must be a JSON object"),
        (5, "must be a JSON object"),
        (None, "must be a JSON object"),
    ],
)
def test_policy_from_mapping_refuses_anything_else_naming_the_setting(raw, named) -> None:
    with pytest.raises(InvalidArgument, match=named) as refused:
        Policy.from_mapping(raw)
    assert http_status(refused.value) == 400
    assert len(str(refused.value)) < 1_000


def test_json_nan_and_infinity_in_a_policy_are_refused() -> None:
    for text in ('{"approvals": {"Production": NaN}}', '{"approvals": {"Production": Infinity}}'):
        with pytest.raises(InvalidArgument, match="approvals"):
            Policy.from_mapping(json.loads(text))


def test_a_policy_too_long_for_its_mlflow_tag_is_refused() -> None:
    metrics = [f"{i:03d}" + "\U0001f600" * 240 for i in range(100)]  # 12 JSON chars each
    with pytest.raises(InvalidArgument, match="characters as JSON; MLflow keeps at most 100,000"):
        Policy.from_mapping({"not_worse_than_production": metrics})


# Actions, in-process on an embedded registry ------------------------------------------


class State:
    """A registry with ``NAME`` v1 in Staging (policy set) and v2 in None, and a pending
    Production request for v1."""

    def __init__(self, uri: str, request_id: str) -> None:
        self.uri, self.request_id = uri, request_id

    def snapshot(self) -> dict[str, Any]:
        return model_state(self.uri, NAME)


@pytest.fixture(scope="module")
def registry_state(tmp_path_factory: pytest.TempPathFactory, model) -> Iterator[State]:
    root = tmp_path_factory.mktemp("validation")
    shutil.copyfile(schema_template(), root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    cwd = Path.cwd()
    os.chdir(root)
    try:
        alice = Registry(uri, user="alice")
        alice.register(model, NAME, metrics={"test": {"auc": 0.9}})
        alice.register(model, NAME, metrics={"test": {"auc": 0.8}})
        alice.set_policy(NAME, approvals={"Production": 1})
        alice.transition(NAME, 1, "Staging", reason="candidate")
        request = alice.request(NAME, 1, "Production", reason="ship")
        alice.register(model, FUZZED, stage="Staging", reason="fuzz me")
        alice.register(model, FUZZED)
        yield State(uri, request.id)
    finally:
        os.chdir(cwd)


@pytest.fixture
def state(registry_state: State, monkeypatch: pytest.MonkeyPatch) -> State:
    """The environment `mlflow server` gives its app: the store URIs (as
    ``jupyreg.compat.server_store_uris`` reads them); webhooks are not under test here."""
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    monkeypatch.setenv(BACKEND_STORE_URI_ENV_VAR, registry_state.uri)
    monkeypatch.setenv(REGISTRY_STORE_URI_ENV_VAR, registry_state.uri)
    monkeypatch.setattr("jupyreg.server.events.fire_webhook", lambda *args, **kwargs: None)
    monkeypatch.chdir(Path(registry_state.uri.removeprefix("sqlite:///")).parent)
    return registry_state


def _actions(user: str = "admin", level: str = "MANAGE") -> Actions:
    return Actions(user, user == "admin", lambda name: get_permission(level))


def _refused(state: State, action: str, body: Any, named: str, user: str = "admin") -> str:
    before = state.snapshot()
    with pytest.raises(InvalidArgument, match=named) as refused:
        _actions(user).run(action, body)
    assert http_status(refused.value) == 400
    assert state.snapshot() == before, f"{action} {body!r} changed the registry"
    return str(refused.value)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("body", [[], [{"name": NAME}], "abc", "", 5, 1.5, True, None])
def test_a_body_that_is_not_an_object_is_refused(state: State, action: str, body: Any) -> None:
    _refused(state, action, body, "request body must be a JSON object")


def test_an_unknown_action_is_not_found(state: State) -> None:
    for action in ("nope", "__init__", "_require", "run", "registry", "", None):
        with pytest.raises(NotFound, match="no jupyreg endpoint"):
            _actions().run(action, {"name": NAME})


def _good(action: str) -> dict[str, Any]:
    return {
        "transition": {"name": NAME, "version": 2, "stage": "Staging", "reason": "x"},
        "request": {"name": NAME, "version": 2, "stage": "Staging", "reason": "x"},
        "approve": {"request_id": "00000000", "comment": "x"},
        "reject": {"request_id": "00000000", "comment": "x"},
        "cancel": {"request_id": "00000000"},
        "rollback": {"name": NAME, "reason": "x"},
        "policy": {"name": NAME, "policy": {}},
        "repair": {"name": NAME},
        "reproduction": {"name": NAME, "version": 2, "record": {"ok": True}},
    }[action]


NAMES = [
    (5, "'name' must be a registered model's name"),
    (1.5, "'name' must be"),
    (True, "'name' must be"),
    ([NAME], "'name' must be"),
    ({"name": NAME}, "'name' must be"),
    ("", "missing field 'name'"),
    ("   ", "missing field 'name'"),
    ("a/b", "'name': a model name cannot contain"),
    ("a:b", "'name': a model name cannot contain"),
    ("x" * 257, "'name' has 257 characters"),
    ("a\x00b", "'name' contains a NUL"),
]
VERSIONS = [
    ({"v": 1}, "'version' must be a version number"),
    ([1], "'version' must be a version number"),
    (True, "'version' must be a version number"),
    (1.0, "'version' must be a version number"),
    (0, "'version' must be 1 to"),
    (-1, "'version' must be 1 to"),
    (2**31, "'version' must be 1 to"),
    (10**30, "'version' must be 1 to"),
    (10**5000, "'version' must be 1 to"),
    ("abc", "version must be a number such as 3"),
    ("0", "version must be 1 or more"),
    ("1.5", "version must be a number"),
    ("99999999999", "'version' must be 1 to"),
    ("9" * 100, "'version' has 100 characters"),
]
STAGES = [
    (5, "'stage' must be text"),
    (["Production"], "'stage' must be text"),
    ({"stage": "Staging"}, "'stage' must be text"),
    ("gold", "'stage': unknown stage 'gold'"),
    ("x" * 100, "'stage' has 100 characters"),
]
TEXTS = [
    (5, "must be text, not a number"),
    (["x"], "must be text, not an array"),
    ({"x": 1}, "must be text, not an object"),
    (True, "must be text, not true/false"),
    ("x" * (MAX_TEXT + 1), f"has {MAX_TEXT + 1:,} characters"),
    ("x" * 100_000, "has 100,000 characters"),
    ("a\x00b", "contains a NUL"),
]
REQUEST_IDS = [
    (5, "'request_id' must be text"),
    ([1], "'request_id' must be text"),
    ({"id": "x"}, "'request_id' must be text"),
    ("x" * 65, "'request_id' has 65 characters"),
]


def _cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = []
    for action in ("transition", "request", "rollback", "policy", "repair"):
        cases += [(action, {**_good(action), "name": v}, m) for v, m in NAMES if v != ""]
    for action in ("transition", "request", "rollback", "policy"):
        cases.append((action, {**_good(action), "name": ""}, "missing field 'name'"))
    for action in ("transition", "request"):
        cases += [(action, {**_good(action), "version": v}, m) for v, m in VERSIONS]
        cases += [(action, {**_good(action), "stage": v}, m) for v, m in STAGES]
        cases += [(action, {**_good(action), "reason": v}, "'reason'.*" + m) for v, m in TEXTS]
        for missing in ("name", "version", "stage"):
            body = {k: v for k, v in _good(action).items() if k != missing}
            cases.append((action, body, f"missing field '{missing}'"))
    cases += [("rollback", {**_good("rollback"), "reason": v}, m) for v, m in TEXTS]
    for action in ("approve", "reject", "cancel"):
        cases += [(action, {**_good(action), "request_id": v}, m) for v, m in REQUEST_IDS]
        cases.append((action, {}, "missing field 'request_id'"))
    for value, message in [
        ("abc", "'policy' must be a JSON object"),
        ([1], "'policy' must be a JSON object"),
        (5, "'policy' must be a JSON object"),
        (True, "'policy' must be a JSON object"),
        (None, "missing field 'policy'"),
        ({"Production": "abc"}, "unknown policy setting"),
        ({"approvals": {"Production": "abc"}}, "approvals"),
        ({"approvals": {"Production": -1}}, "approvals"),
        ({"exclusive": 5}, "exclusive"),
        ({"gated_stages": [None]}, "gated_stages"),
        ({"thresholds": ["test.auc >= 1e999999"]}, "finite"),
    ]:
        cases.append(("policy", {"name": NAME, "policy": value}, message))
    return cases


CASES = _cases()


@pytest.mark.parametrize(
    ("action", "body", "named"),
    CASES,
    ids=[f"{action}-{'-'.join(body)}-{i}" for i, (action, body, _) in enumerate(CASES)],
)
def test_a_wrong_field_is_refused_naming_it_and_nothing_changes(
    state: State, action: str, body: dict[str, Any], named: str
) -> None:
    _refused(state, action, body, named)


@pytest.mark.parametrize(("value", "named"), TEXTS)
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_a_wrong_comment_on_a_real_request_is_refused(state: State, verb, value, named) -> None:
    body = {"request_id": state.request_id, "comment": value}
    _refused(state, verb, body, "'comment'.*" + named, user="bob")
    assert Registry(state.uri).get_request(state.request_id).status == "pending"


def test_well_formed_input_still_works(state: State) -> None:
    admin = _actions()
    read = admin.run("policy", {"name": NAME})
    assert read["policy"]["approvals"] == {"Production": 1}
    filed = admin.run(
        "request", {"name": NAME, "version": "2", "stage": "staging", "reason": "  try  "}
    )["request"]
    assert filed["to_stage"] == "Staging" and filed["reason"] == "try"
    cancelled = admin.run("cancel", {"request_id": filed["id"]})["request"]
    assert cancelled["status"] == "cancelled"
    stored = admin.run(
        "policy", {"name": NAME, "policy": {"approvals": {"production": 1}, "thresholds": []}}
    )
    assert stored["policy"]["approvals"] == {"Production": 1}
    assert admin.run("repair", {"name": ""})["problems"] == []


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**31 - 2, max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([FUZZED, "Production", "staging", "1", "v2", "", " ", "0" * 30]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ("name", "version", "stage", "reason", "comment", "request_id", "policy")
WELL_FORMED = {
    "name": st.sampled_from([FUZZED, NAME.upper(), "no-such-model"]),
    "version": st.sampled_from([1, 2, 3, "2", "v1"]),
    "stage": st.sampled_from(["Staging", "production", "ARCHIVED", "None"]),
    "reason": st.sampled_from(["why", "", "  "]),
    "comment": st.sampled_from(["ok", ""]),
    "request_id": st.sampled_from(["00000000", "deadbeef", "../x"]),
    "policy": st.sampled_from([{}, {"approvals": {"Production": 0}}, {"thresholds": []}]),
}
FIELD_BODIES = st.fixed_dictionaries(
    {}, optional={key: WELL_FORMED[key] | WELL_FORMED[key] | JSON for key in FIELDS}
)
BODIES = st.integers(0, 3).flatmap(lambda i: JSON if i == 0 else FIELD_BODIES)  # 3/4 objects


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    action=st.sampled_from(ACTIONS),
    body=BODIES,
    admin=st.booleans(),
)
def test_any_json_body_is_answered_with_a_registry_error_or_a_result(
    state: State, action: str, body: Any, admin: bool
) -> None:
    """Whatever the body, an action returns or raises one of jupyreg's named errors (a
    4xx): never an exception that a server answers with 500."""
    actions = _actions("admin" if admin else "alice", "MANAGE" if admin else "EDIT")
    try:
        assert isinstance(actions.run(action, body), dict)
    except RegistryError as exc:
        assert http_status(exc) < 500, (action, body, exc)


@pytest.mark.parametrize(
    ("record", "named"),
    [
        (None, "missing field 'record'"),
        ([{"ok": True}], "'record' must be a JSON object, not an array"),
        ({"deltas": {}}, "'record' needs 'ok': true or false"),
        ({"ok": "yes"}, "'record' needs 'ok'"),
        ({"ok": True, "warnings": ["x" * 60_000]}, "'record' is over 50000 characters"),
    ],
)
def test_a_reproduction_record_is_checked_before_anything_is_kept(
    state: State, record: Any, named: str
) -> None:
    body = {"name": NAME, "version": 2, "record": record}
    _refused(state, "reproduction", {k: v for k, v in body.items() if v is not None}, named)


def test_the_server_stamps_who_kept_a_reproduction_and_when(state: State) -> None:
    from mlflow import MlflowClient

    forged = {"ok": True, "author": "mallory", "at": "1999-01-01T00:00:00Z", "id": "0"}
    with pytest.raises(PermissionDenied, match="keeping a reproduction needs EDIT"):
        Actions("eve", False, lambda name: get_permission("READ")).run(
            "reproduction", {"name": NAME, "version": 2, "record": forged}
        )
    kept = _actions("alice", "EDIT").run(
        "reproduction", {"name": NAME, "version": 2, "record": forged}
    )["id"]
    version_tags = MlflowClient(state.uri).get_model_version(NAME, "2").tags
    record = json.loads(version_tags[f"jupyreg.reproduction.{kept}"])
    assert (record["ok"], record["author"]) == (True, "alice")
    assert record["at"] > "2026" and "id" not in record
