"""The partner token the dispatcher tests' settings name, set for every test here."""

from __future__ import annotations

import pytest

from tests.dispatch.helpers import TOKEN, TOKEN_ENV


@pytest.fixture(autouse=True)
def partner_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
