"""`make test` runs each stage on pytest-xdist with ``--dist loadgroup``: the tests sharing
a module-scoped fixture (a server, a cluster) form one unit on one worker, so the fixture is
made once. Were the groups dropped, every worker would make its own servers, silently (it
happened: pytest 9.2 with xdist 3.8 ran the team fixture four times and the attack servers
eight)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def shared() -> str:
    return "made once"


def test_a_test_sharing_a_module_fixture_runs_in_its_modules_group(request, shared) -> None:
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist workers
        pytest.skip("runs under `pytest -n N --dist loadgroup` (make test)")
    assert request.node.nodeid.endswith("@test_suite_grouping.py"), request.node.nodeid
