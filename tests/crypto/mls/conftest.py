"""Per-suite parametrisation for the MLS vector tests."""

from __future__ import annotations

import pytest

from securechat.crypto.mls.errors import MissingPrimitive
from securechat.crypto.mls.suite import CipherSuite, get_suite
from tests.crypto.mls.vectors import SUITES


@pytest.fixture(params=SUITES, ids=lambda s: f"suite{s}")
def suite(request: pytest.FixtureRequest) -> CipherSuite:
    """Each of cipher suites 1-7; one the installed library cannot run says which primitive."""
    chosen = get_suite(request.param)
    try:
        chosen.check_available()
    except MissingPrimitive as exc:
        pytest.skip(str(exc))
    return chosen
