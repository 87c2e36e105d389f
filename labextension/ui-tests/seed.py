"""Seed the UI tests' registry before JupyterLab starts (run with the project's Python).

fraud-detector v1 (Staging) with alice's pending Production request, and v2 (None).
The server acts as bob (jupyter_server_test_config.py), so bob can approve in the UI.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

from jupyreg import Registry

NAME = "fraud-detector"

rng = np.random.default_rng(0)
x = rng.normal(size=(200, 4))
y = (x[:, 0] > 0).astype(int)
alice = Registry(os.environ["MLFLOW_TRACKING_URI"], user="alice")
for c in (0.5, 1.0):
    alice.register(
        LogisticRegression(C=c).fit(x, y),
        NAME,
        metrics={"val": {"auc": 0.9 + c / 100}, "test": {"auc": 0.89}},
        data=[],
    )
alice.transition(NAME, 1, "Staging", reason="best validation AUC")
request = alice.request(NAME, 1, "Production", reason="beats the baseline")
print(f"seeded {NAME} v1, v2; pending request {request.id}", file=sys.stderr)
