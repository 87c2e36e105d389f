"""An unreachable registry fails within seconds, with the whole URL and what to do next."""

from __future__ import annotations

import os
import time

import pytest

from jupyreg import Registry
from jupyreg.cli import main
from jupyreg.compat import FAIL_FAST
from jupyreg.errors import RegistryUnavailable
from jupyreg.store import translated
from tests.conftest import free_port


@pytest.fixture
def closed_port_uri(workdir, monkeypatch) -> str:
    import mlflow  # noqa: F401 - the import's second is not what is measured

    for name in FAIL_FAST:  # MLflow's own defaults would retry for minutes
        monkeypatch.delenv(name, raising=False)
    return f"http://127.0.0.1:{free_port()}"


def test_the_api_gives_up_in_seconds_naming_the_whole_url(closed_port_uri) -> None:
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as error:
        Registry(closed_port_uri, user="alice").models()
    assert time.monotonic() - started < 5
    assert str(error.value) == (
        f"the registry at {closed_port_uri} cannot be reached (connection refused); check "
        "that the tracking server is running and the URI is right, then retry"
    )
    with pytest.raises(RegistryUnavailable, match="connection refused"):
        Registry(closed_port_uri, user="alice").transition("m", 1, "Staging", reason="x")


def test_failing_fast_leaves_the_environment_alone(closed_port_uri) -> None:
    """MLflow's retry settings are the whole process's: the API must not set them."""
    before = dict(os.environ)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="connection refused"):
        Registry(closed_port_uri, user="alice").versions("m")
    assert time.monotonic() - started < 5
    assert dict(os.environ) == before


def test_the_message_keeps_a_password_in_the_uri_out(closed_port_uri) -> None:
    with_password = closed_port_uri.replace("http://", "http://alice:s3cret@")
    with pytest.raises(RegistryUnavailable) as error:
        Registry(with_password, user="alice").models()
    assert "s3cret" not in str(error.value)
    assert str(error.value).startswith(f"the registry at {closed_port_uri} cannot be reached")


def test_a_drivers_own_words_lose_a_password_too() -> None:
    """Where no known reason matches, the driver's first line is shown (300 characters at
    most): scrubbed before it is cut, so that no half of a URL keeps its user or password."""
    import sqlalchemy.exc

    uri = "postgresql://alice:s3cret@db.internal:5432/registry"
    for padding in (0, 300 - len("(builtins.Exception) postgresql://alice:s3")):
        driver = "x" * padding + f"{uri} refused the startup packet"
        with pytest.raises(RegistryUnavailable) as error, translated("models", uri):
            raise sqlalchemy.exc.OperationalError("SELECT 1", None, Exception(driver))
        message = str(error.value)
        assert "alice" not in message and "s3" not in message, message
        assert message.startswith("the registry at postgresql://db.internal:5432/registry")
        assert message.endswith(
            "check that the database is running and the URI is right, then retry"
        )
        if not padding:  # the driver's words are shown, the URL in them scrubbed
            assert "postgresql://db.internal:5432/registry refused the startup" in message


def test_the_cli_exits_3_in_seconds(closed_port_uri, capsys) -> None:
    started = time.monotonic()
    assert main(["--tracking-uri", closed_port_uri, "list"]) == 3
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"jupyreg: the registry at {closed_port_uri} cannot be reached")
    assert err.endswith("then retry") and "\n" not in err
