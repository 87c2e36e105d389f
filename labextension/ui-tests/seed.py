"""Seed the UI tests' registry before JupyterLab starts (run with the project's Python).

fraud-detector: v1 (Staging) with alice's pending Production request, and v2 (None).
churn-model (issue 17's views): v1 in Production (val.auc 0.92655, approved by bob with a
comment), v2 Archived, v3 in Staging (val.auc 0.92741) with alice's pending Production
request, v4 newest (None). A model with a long name. The server acts as bob
(jupyter_server_test_config.py), so bob can approve in the UI.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

from jupyreg import Registry

NAME = "fraud-detector"
CHURN = "churn-model"
LONG_NAME = "customer-lifetime-value-regressor-experimental"

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
print(
    f"seeded {NAME} v1, v2 (request {request.id}); {CHURN} v1-v4 (request {candidate.id}); "
    f"{LONG_NAME}",
    file=sys.stderr,
)
