"""Seed the UI tests' registry before JupyterLab starts (run with the project's Python).

fraud-detector: v1 (Staging) with alice's pending Production request, and v2 (None).
churn-model (issue 17's views): v1 in Production (val.auc 0.92655, approved by bob with a
comment), v2 Archived, v3 in Staging (val.auc 0.92741) with alice's pending Production
request, v4 newest (None). A model with a long name. credit-risk v1 (Staging) with alice's
Production request that only dana may approve. The server acts as bob
(jupyter_server_test_config.py), so bob can approve in the UI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from jupyreg import Registry, tags

NAME = "fraud-detector"
CHURN = "churn-model"
LONG_NAME = "customer-lifetime-value-regressor-experimental"
CREDIT = "credit-risk"


def git(*args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=seed", "-c", "user.email=seed@example.com", *args],
        check=True,
        capture_output=True,
    )


Path(".gitignore").write_text("mlflow.db*\nmlruns/\nmlartifacts/\n.ipynb_checkpoints/\n")
Path("train.py").write_text("C = 0.5\n")
git("init", "-q", "-b", "main")
git("add", "-A")
git("commit", "-q", "-m", "project")

rng = np.random.default_rng(0)
x = rng.normal(size=(200, 4))
y = (x[:, 0] > 0).astype(int)
alice = Registry(os.environ["MLFLOW_TRACKING_URI"], user="alice")
bob = Registry(os.environ["MLFLOW_TRACKING_URI"], user="bob")
for c in (0.5, 1.0):
    alice.register(
        LogisticRegression(C=c).fit(x, y),
        NAME,
        metrics={"val": {"auc": 0.9 + c / 100}, "test": {"auc": 0.89}},
        data=[],
    )
alice.transition(NAME, 1, "Staging", reason="best validation AUC")
request = alice.request(NAME, 1, "Production", reason="beats the baseline")

for c, auc, loss in (
    (0.5, 0.92655, 0.3012),
    (0.7, 0.901, 0.35),
    (1.0, 0.92741, 0.3105),
    (2.0, 0.91, 0.32),
):
    alice.register(
        LogisticRegression(C=c).fit(x, y),
        CHURN,
        metrics={"val": {"auc": auc, "log_loss": loss}, "test": {"auc": 0.9}},
        data=[],
    )
alice.transition(CHURN, 1, "Staging", reason="first candidate")
first = alice.request(CHURN, 1, "Production", reason="baseline")
bob.approve(first.id, comment="solid baseline, test AUC checked")
alice.transition(CHURN, 2, "Archived", reason="worse AUC")
alice.transition(CHURN, 3, "Staging", reason="auc up")
candidate = alice.request(CHURN, 3, "Production", reason="val AUC up on the same data")

alice.register(LogisticRegression().fit(x, y), LONG_NAME, metrics={"val": {"rmse": 12.5}}, data=[])

# a request bob may not decide: Production approvers are dana alone (issue 26)
alice.register(LogisticRegression().fit(x, y), CREDIT, metrics={"val": {"auc": 0.88}}, data=[])
alice.transition(CREDIT, 1, "Staging", reason="first candidate")
alice.set_policy(CREDIT, approvers={"Production": ["dana"]}, reason="dana signs credit models")
alice.request(CREDIT, 1, "Production", reason="ready for credit decisions")

client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
for version, ok in ((1, True), (3, False)):
    key, value = tags.reproduction_tag(
        f"20261127T00000{version}000000Z-5eed000{version}", {"ok": ok}
    )
    client.set_model_version_tag(CHURN, str(version), key, value)
Path("train.py").write_text("C = 0.7\n")
git("commit", "-q", "-am", "retune C")  # code changed since churn-model v1 was trained
print(
    f"seeded {NAME} v1, v2 (request {request.id}); {CHURN} v1-v4 (request {candidate.id}); "
    f"{LONG_NAME}",
    file=sys.stderr,
)
