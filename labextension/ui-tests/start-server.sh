#!/usr/bin/env bash
# Seed a fresh registry in $JUPYREG_UI_RUN_DIR, then start JupyterLab on it (Playwright's webServer).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${JUPYREG_UI_RUN_DIR:?set by playwright.config.js}"
: "${JUPYREG_PYTHON:?set by playwright.config.js}"
# Seed and serve from the registry's own folder: Registry.register currently logs the model
# into ./mlflow.db of the working directory whatever the tracking URI (reported upstream).
cd "$JUPYREG_UI_RUN_DIR"
export MLFLOW_TRACKING_URI="sqlite:///$JUPYREG_UI_RUN_DIR/mlflow.db"
export JUPYTERLAB_GALATA_ROOT_DIR="$JUPYREG_UI_RUN_DIR"
"$JUPYREG_PYTHON" "$here/seed.py"
exec "$JUPYREG_PYTHON" -m jupyterlab --config "$here/jupyter_server_test_config.py"
