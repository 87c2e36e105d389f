"""An unreachable tracking server is a 503 with the registry's message, not a traceback."""

from __future__ import annotations

import pytest

from tests.conftest import free_port


@pytest.fixture
def jp_server_config(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    return {
        "ServerApp": {"jpserver_extensions": {"jupyreg": True}},
        "JupyRegServer": {"tracking_uri": f"http://127.0.0.1:{free_port()}", "user": "bob"},
    }


async def test_an_unreachable_registry_is_503_json(api):
    status, body = await api("GET", "models")
    assert status == 503
    assert body["error"] == "RegistryUnavailable"
    assert body["message"]
