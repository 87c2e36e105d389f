"""An existing training script that knows nothing of jupyreg: plain MLflow only.

Run it in a git (+ DVC) repository where jupyreg is installed:

    python examples/scripts/train.py --C 0.5

and the version it registers carries jupyreg's lineage (git commit and diff, this script
and its arguments, the DVC md5 of each dataset, GPU, Python): `jupyreg versions
fraud-detector-v2`, `jupyreg compare fraud-detector-v2 1 2`, `jupyreg card
fraud-detector-v2 1`. Through `jupyreg run -- python examples/scripts/train.py --C 0.5` it
records that command instead, for `jupyreg reproduce` to run again.
"""

import argparse

import mlflow
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, default=1.0)
args = parser.parse_args()

X, y = make_classification(n_samples=500, n_features=8, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
model = LogisticRegression(C=args.C, max_iter=1000).fit(X_train, y_train)

with mlflow.start_run():
    mlflow.log_param("C", args.C)
    mlflow.log_metric("val_auc", roc_auc_score(y_val, model.predict_proba(X_val)[:, 1]))
    mlflow.sklearn.log_model(model, name="model", registered_model_name="fraud-detector-v2")
