"""`reproduce` end to end: versions registered by `%%register` in real kernels (nbclient)
from a real git + DVC repository, re-run in fresh kernels from a worktree at their commit.

One repository serves the whole module (5 kernel runs in all): a notebook registers
fraud-detector (trained on data/train.csv, scaled by features.SCALE) and `noisy` (a random
metric); a second run registers fraud-detector v2 from a dirty tree (SCALE = 2, not
committed); then the data changes and `dvc add` records it again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

from jupyreg import Registry
from jupyreg.cli import main
from jupyreg.errors import NotReproducible, PolicyViolation
from tests.lineage.lineage_helpers import DVC, commit_all, init_git, md5, run

NAME, NOISY = "fraud-detector", "noisy"
TRAIN = """\
%%register fraud-detector --model clf --metrics metrics
import numpy as np
from sklearn.linear_model import LogisticRegression
from features import SCALE
data = np.loadtxt("data/train.csv", delimiter=",")
clf = LogisticRegression().fit(data[:, :2] * SCALE, data[:, 2])
metrics = {"val": {"acc": clf.score(data[:, :2] * SCALE, data[:, 2]), "rows": len(data),
                   "scale": SCALE}}
"""
NOISE = """\
%%register noisy --model clf --metrics noise
noise = {"val": {"auc": float(np.random.default_rng().random())}}
"""


def _dataset(rows: int) -> str:
    return "".join(f"{i % 7},{(i * 3) % 5},{(i // 3) % 2}\n" for i in range(rows))


def _execute(nb_path: Path) -> None:
    nb = nbformat.read(nb_path, as_version=4)
    where = {"metadata": {"path": str(nb_path.parent)}}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources=where).execute()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("reproduce") / "project"
    (root / "data").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DVC_NO_ANALYTICS", "1")
        env.setenv("JUPYREG_CACHE_DIR", str(root.parent / "cache"))
        env.setenv("JUPYREG_USER", "alice")
        env.chdir(root)
        (root / "data" / "train.csv").write_text(_dataset(120))
        (root / "features.py").write_text("SCALE = 1\n")
        (root / ".gitignore").write_text("mlflow.db*\nmlruns/\nmlartifacts/\n.ipynb_checkpoints/\n")
        init_git(root)
        run(DVC, "init", "-q", cwd=root)
        run(DVC, "add", "-q", "data/train.csv", cwd=root)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(f"%load_ext jupyreg\n%config JupyReg.tracking_uri = {uri!r}"),
            nbformat.v4.new_code_cell(TRAIN),
            nbformat.v4.new_code_cell(NOISE),
        ]
        nb_path = root / "train.ipynb"
        nbformat.write(nb, nb_path)
        commit_all(root, "training notebook")
        env.setenv("JPY_SESSION_NAME", str(nb_path))
        _execute(nb_path)  # fraud-detector v1, noisy v1
        (root / "features.py").write_text("SCALE = 2\n")  # uncommitted
        _execute(nb_path)  # fraud-detector v2 (dirty), noisy v2
        env.delenv("JPY_SESSION_NAME")
        (root / "data" / "train.csv").write_text(_dataset(300))
        run(DVC, "add", "-q", "data/train.csv", cwd=root)
        commit_all(root, "more data, scale 2")
        yield root


@pytest.fixture
def reg(project: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.chdir(project)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(project.parent / "cache"))
    return Registry(f"sqlite:///{project / 'mlflow.db'}", user="bob")


def _worktrees(root: Path) -> int:
    return run("git", "worktree", "list", "--porcelain", cwd=root).count("worktree ")


def test_an_old_version_reproduces_from_its_transcript_with_its_old_data(
    project: Path, reg: Registry
) -> None:
    old = reg.get(NAME, 1)
    assert old.metrics["val.rows"] == 120 and old.lineage["git"]["dirty"] is False
    progress: list[tuple[int, int]] = []
    result = reg.reproduce(
        NAME, 1, confirm=False, progress=lambda done, total: progress.append((done, total))
    )

    assert result.ok, result.text()
    assert result.reproduced == result.recorded == old.metrics  # 120 rows, not the 300 now
    assert set(result.deltas.values()) == {0.0}
    assert progress == [(1, 2), (2, 2)]  # the transcript: load_ext, then the training cell
    assert result.environment == []  # same interpreter, same packages, no GPU either side
    assert "reproduced" in result.summary() and "val.rows" in result._repr_html_()
    # the executed notebook is a run artifact; the outcome is kept on the version
    executed = MlflowClient(reg.tracking_uri).download_artifacts(
        old.run_id, result.notebook_uri.split(f"{old.run_id}/", 1)[1]
    )
    assert "%%register fraud-detector" in Path(executed).read_text()
    (kept,) = [json.loads(v) for k, v in reg.get(NAME, 1).tags.items() if "reproduction." in k]
    assert (kept["ok"], kept["author"], kept["deltas"]) == (True, "bob", result.deltas)
    assert reg.versions(NAME)["reproduced"].fillna("-").tolist() == ["passed", "-"]
    # the workspace is untouched, the worktree gone
    assert md5(project / "data" / "train.csv") != old.lineage["data"][0]["md5"]
    assert _worktrees(project) == 1


def test_a_version_from_a_dirty_tree_reproduces_with_its_diff(reg: Registry, capsys) -> None:
    dirty = reg.get(NAME, 2)
    assert dirty.lineage["git"]["dirty"] is True and dirty.metrics["val.scale"] == 2
    assert dirty.lineage["git"]["commit"] == reg.get(NAME, 1).lineage["git"]["commit"]
    code = main(["--tracking-uri", reg.tracking_uri, "reproduce", NAME, "2", "--yes"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.startswith(f"{NAME} v2 reproduced (tolerance 1e-06)")
    assert "val.scale" in out and "FAIL" not in out
    assert "cell 3/3" not in err and "cell 2/2" in err  # progress on the terminal


def test_a_non_deterministic_notebook_fails_with_its_deltas_and_the_gate_refuses(
    reg: Registry, capsys
) -> None:
    argv = ["reproduce", NOISY, "1", "--format", "json", "--yes"]
    code = main(["--tracking-uri", reg.tracking_uri, *argv])
    out, _ = capsys.readouterr()
    assert code == 1
    shown = json.loads(out)
    assert shown["ok"] is False and shown["deltas"]["val.auc"] != 0
    assert shown["recorded"]["val.auc"] + shown["deltas"]["val.auc"] == pytest.approx(
        shown["reproduced"]["val.auc"]
    )
    assert reg.get(NOISY, 1).reproduced == "failed"

    reg.set_policy(NOISY, require_reproduced=True, approvals={"Production": 0}, reason="trust")
    reg.transition(NOISY, 1, "Staging", reason="candidate")
    with pytest.raises(PolicyViolation, match="reproduced: its latest reproduction failed"):
        reg.request(NOISY, 1, "Production", reason="ship it")
    reg.transition(NOISY, 2, "Staging", reason="candidate")
    with pytest.raises(PolicyViolation, match="reproduced: never reproduced"):
        reg.transition(NOISY, 2, "Production", reason="ship it")


def test_a_version_whose_data_is_gone_names_the_dataset_and_hash(
    project: Path, reg: Registry
) -> None:
    before = dict(reg.get(NAME, 1).tags)
    wanted = reg.get(NAME, 1).lineage["data"][0]["md5"]
    cache = project / ".dvc" / "cache"
    shutil.move(cache, project.parent / "cache-away")
    try:
        with pytest.raises(NotReproducible, match=rf"data/train\.csv \(md5 {wanted}\)"):
            reg.reproduce(NAME, 1, confirm=False)
    finally:
        shutil.move(project.parent / "cache-away", cache)
    assert reg.get(NAME, 1).tags == before  # nothing kept for a run that could not start
    assert _worktrees(project) == 1
