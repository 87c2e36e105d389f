"""A FastAPI service that serves the Production version of a registered model and follows
it: when a new version enters Production, ``jupyreg.follow`` loads and verifies it in the
background and swaps it in; requests in flight finish on the version they started with.

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db JUPYREG_MODEL=fraud-detector \
        uvicorn app:app --host 127.0.0.1 --port 8000
    curl -X POST localhost:8000/predict -H 'Content-Type: application/json' \
        -d '[{"age": 41, "income": 52000, "tenure": 3}]'
"""

from __future__ import annotations

import os

import pandas as pd
from fastapi import FastAPI
from fastapi.responses import JSONResponse

import jupyreg

model = jupyreg.follow(
    os.environ.get("JUPYREG_MODEL", "fraud-detector"),
    stage="Production",
    poll_interval=float(os.environ.get("JUPYREG_POLL_INTERVAL", "5")),
)
app = FastAPI()


@model.on_change
def announce(new, old) -> None:
    print(f"now serving v{new.version} (was v{old.version})", flush=True)


@app.post("/predict")
def predict(rows: list[dict[str, float]]) -> JSONResponse:
    served = model.current  # one version for the whole request, whatever swaps meanwhile
    predictions = served.model.predict(pd.DataFrame(rows))
    return JSONResponse(
        {"version": served.version, "predictions": pd.Series(predictions).tolist()},
        headers={"X-Model-Version": str(served.version)},
    )


@app.get("/version")
def version() -> dict:
    return {"version": model.version}
