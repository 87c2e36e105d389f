"""The fast half of reproducing (stage 1; kernels run in tests/test_reproduce.py): the
``require_reproduced`` gate, the reproduction tags and how versions/compare show them,
``register`` inside a reproducing kernel, and the CLI's refusals before anything runs."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from jupyreg import Registry, tags
from jupyreg.cli import main
from jupyreg.errors import InvalidArgument, NotReproducible, PolicyViolation
from jupyreg.lifecycle import PRODUCTION, Evidence, Policy
from jupyreg.reproduce import REPRODUCE_ENV
from tests.conftest import model_state

NAME = "fraud-detector"


def reproduced_tag(ok: bool) -> tuple[str, str]:
    """A reproduction outcome as ``reproduce`` keeps it."""
    record = {"author": "alice", "ok": ok, "deltas": {"val.auc": 0.0 if ok else 0.2}}
    return tags.reproduction_tag(f"20261128T000000{int(ok)}00000Z-0000000{int(ok)}", record)


def test_policy_declares_require_reproduced_strictly() -> None:
    assert Policy.from_mapping({"require_reproduced": True}).require_reproduced
    assert Policy.from_mapping({}).to_dict()["require_reproduced"] is False
    with pytest.raises(InvalidArgument, match="require_reproduced must be true or false"):
        Policy.from_mapping({"require_reproduced": "yes"})


def test_the_gate_passes_only_on_a_passing_latest_reproduction() -> None:
    policy = Policy(approvals={}, require_reproduced=True)
    assert policy.gates(PRODUCTION)
    (never,) = policy.failing_gates(PRODUCTION, Evidence(reproduced=None), None)
    assert never.startswith("reproduced: never reproduced")
    (failed,) = policy.failing_gates(PRODUCTION, Evidence(reproduced="failed"), None)
    assert "latest reproduction failed" in failed and "jupyreg reproduce" in failed
    assert policy.failing_gates(PRODUCTION, Evidence(reproduced="passed"), None) == []
    assert policy.failing_gates("Staging", Evidence(reproduced=None), None) == []


def test_reproduction_tags_are_the_lifecycles_and_outside_the_seal() -> None:
    record = {"jupyreg.author": "alice", "jupyreg.git.commit": "abc1234"}
    sealed = tags.seal(record)
    passed, failed = reproduced_tag(True), reproduced_tag(False)
    assert tags.reproduced(record) is None
    assert tags.reproduced({**record, failed[0]: failed[1]}) == "failed"
    latest_passed = {**record, failed[0]: failed[1], passed[0]: passed[1]}
    assert tags.reproduced(latest_passed) == "passed"  # ids sort by time: the latest counts
    assert tags.seal(latest_passed) == sealed
    assert tags.written_by_lifecycle_only(passed[0])
    assert tags.evidence(latest_passed).reproduced == "passed"


def test_gate_refuses_until_a_reproduction_passed_and_versions_show_it(
    workdir, alice: Registry, model
) -> None:
    version = alice.register(model, NAME, metrics={"val": {"auc": 0.9}}, data=[]).version
    alice.set_policy(NAME, approvals={PRODUCTION: 0}, require_reproduced=True, reason="trust")
    alice.transition(NAME, version, "Staging", reason="candidate")
    client = MlflowClient(alice.registry_uri, alice.registry_uri)
    before = model_state(alice.registry_uri, NAME)
    with pytest.raises(PolicyViolation, match="1 gate.*reproduced: never reproduced"):
        alice.transition(NAME, version, PRODUCTION, reason="ship")
    assert model_state(alice.registry_uri, NAME) == before

    client.set_model_version_tag(NAME, str(version), *reproduced_tag(False))
    with pytest.raises(PolicyViolation, match="latest reproduction failed"):
        alice.transition(NAME, version, PRODUCTION, reason="ship")
    assert alice.versions(NAME)["reproduced"].tolist() == ["failed"]

    client.set_model_version_tag(NAME, str(version), *reproduced_tag(True))
    assert alice.transition(NAME, version, PRODUCTION, reason="reproduced").stage == PRODUCTION
    assert alice.versions(NAME)["reproduced"].tolist() == ["passed"]
    assert alice.compare(NAME).loc["reproduced", version] == "passed"
    assert alice.check(NAME).empty  # the seal still holds


def test_register_in_a_reproducing_kernel_records_and_registers_nothing(
    workdir, alice: Registry, model, monkeypatch
) -> None:
    records = workdir / "records.jsonl"
    monkeypatch.setenv(REPRODUCE_ENV, str(records))
    monkeypatch.setenv("JUPYREG_REPRODUCE_VERSION", "3")
    shown = alice.register(model, NAME, metrics={"val": {"auc": 0.5}}, stage="Staging")
    assert (shown.name, shown.version, shown.metrics) == (NAME, 3, {"val.auc": 0.5})
    (line,) = records.read_text().splitlines()
    record = json.loads(line)
    assert record["name"] == NAME and record["metrics"] == {"val.auc": 0.5}
    assert any(p.startswith("scikit-learn==") for p in record["packages"])
    with pytest.raises(NotReproducible, match="lifecycle steps .* are not applied"):
        alice.transition(NAME, 1, "Staging", reason="a cell that once promoted")
    monkeypatch.delenv(REPRODUCE_ENV)
    assert MlflowClient(alice.registry_uri).search_registered_models() == []


def test_cli_policy_flag_and_refusals_before_anything_runs(
    workdir, sqlite_uri, alice: Registry, model, capsys
) -> None:
    version = alice.register(model, NAME, metrics={"val": {"auc": 0.9}}, data=[]).version
    base = ["--tracking-uri", sqlite_uri, "--user", "alice"]
    assert main([*base, "policy", "set", NAME, "--require-reproduced", "true"]) == 0
    assert alice.policy(NAME).require_reproduced
    capsys.readouterr()

    assert main([*base, "reproduce", NAME, str(version), "--tolerance", "-1"]) == 2
    assert "tolerance must be a number >= 0" in capsys.readouterr().err
    assert main([*base, "reproduce", NAME, "9"]) == 2
    with pytest.raises(SystemExit, match="2"):
        main([*base, "reproduce", NAME, "x"])
    capsys.readouterr()
    # registered outside git (workdir is no repository): nothing to check out
    assert main([*base, "reproduce", NAME, str(version)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "recorded no git commit" in err
    assert alice.get(NAME, version).reproduced is None


def test_the_transcript_is_captured_in_order_and_scrubbed(workdir, monkeypatch) -> None:
    from jupyreg.lineage import capture
    from jupyreg.lineage.capturing import TRANSCRIPT_ARTIFACT
    from jupyreg.lineage.transcript import read_transcript

    token = "ghp_transcriptSecret1234567890abcdef"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    inputs = ["", "%load_ext jupyreg", f"token = {token!r}", "  ", "model = fit()"]
    lineage = capture(cwd=workdir, data=[], user_ns={"In": inputs})
    cells, where = read_transcript(lineage.artifacts[TRANSCRIPT_ARTIFACT])
    assert cells[0] == "%load_ext jupyreg" and cells[2] == "model = fit()" and len(cells) == 3
    assert token not in cells[1] and where is None  # no git repository: no directory in it
    assert f"secrets: credentials found in {TRANSCRIPT_ARTIFACT} were redacted" in lineage.warnings
