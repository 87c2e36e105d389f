"""The end-to-end demo behind ``jupyreg demo``: train, register, request, approve, load.

It runs on the embedded default (a SQLite registry in its own directory), so nothing has
to be started by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _train(seed: int, c: float):  # type: ignore[no-untyped-def]
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, 6))
    logits = 1.5 * x[:, 0] - 2.0 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3]
    y = (logits + rng.normal(scale=1.0, size=len(x)) > 1.0).astype(int)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=seed
    )
    model = LogisticRegression(C=c, max_iter=500).fit(x_train, y_train)
    metrics = {
        "val": {"auc": roc_auc_score(y_val, model.predict_proba(x_val)[:, 1])},
        "test": {"auc": roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])},
    }
    return model, metrics, x_test


def _git_project(workdir: Path) -> None:
    """Make ``workdir`` a throwaway git repository with one commit (a training script),
    so that the versions carry a commit like a real project's; skipped without git."""
    git = shutil.which("git")
    if git is None or (workdir / ".git").exists():
        return
    (workdir / "train.py").write_text("# the demo trains in jupyreg.demo._train\n")
    (workdir / ".gitignore").write_text("mlflow.db*\nmlartifacts/\n")
    identity = ["-c", "user.name=alice", "-c", "user.email=alice@example.com"]
    for args in (["init", "-q"], ["add", "."], [*identity, "commit", "-q", "-m", "demo"]):
        subprocess.run([git, *args], cwd=workdir, check=True, capture_output=True)


def run_demo(directory: str | None = None) -> None:
    """Print each step of a model's way to Production, then the history table."""
    import pandas as pd

    from jupyreg.commands import describe, plain_table
    from jupyreg.registry import Registry

    workdir = Path(directory or tempfile.mkdtemp(prefix="jupyreg-demo-")).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # lineage is captured from the current directory: the demo's repo
    _git_project(workdir)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    print(f"registry: {uri}")
    alice = Registry(uri, user="alice@example.com")
    bob = Registry(uri, user="bob@example.com")

    for seed, c in ((1, 0.01), (2, 1.0)):
        model, metrics, x_test = _train(seed, c)
        mv = alice.register(
            model, "fraud-detector", metrics=metrics, description=f"logistic regression, C={c}"
        )
        print(
            f"registered fraud-detector v{mv.version}: val.auc={mv.metrics['val.auc']:.4g} "
            f"test.auc={mv.metrics['test.auc']:.4g}"
        )
    alice.transition("fraud-detector", mv.version, "Staging", reason="best validation AUC")
    request = alice.request(
        "fraud-detector", mv.version, "Production", reason="beats v1 on val and test AUC"
    )
    print(f"alice requested Production for v{mv.version}: request {request.id}")
    decided = bob.approve(request.id, comment="metrics and lineage look good")
    print(describe(decided))

    production = bob.load("fraud-detector", stage="Production")
    print(
        f"loaded models:/fraud-detector/Production -> predictions {production.predict(x_test[:5])}"
    )
    with pd.option_context("display.width", 160, "display.max_colwidth", 40):
        print("\nversions:")
        columns = ["version", "stage", "aliases", "author", "metrics.val.auc", "metrics.test.auc"]
        print(plain_table(alice.versions("fraud-detector")[[*columns, "git_commit"]]))
        print("\nhistory:")
        history = alice.history("fraud-detector")
        columns = ["at", "version", "from_stage", "to_stage", "author", "reason"]
        print(plain_table(history[columns]))
    mlflow = Path(sys.executable).with_name("mlflow")
    command = str(mlflow) if mlflow.exists() else f"{sys.executable} -m mlflow"
    print(f"\nopen it in the MLflow UI: {command} ui --backend-store-uri {uri}")
