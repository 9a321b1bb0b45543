from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.sandbox.helpers import FORBIDDEN, OTHER_TOKEN, TOKEN


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    """A strict sandbox without faults: two tokens, one forbidden token, one unknown id."""
    config = SandboxConfig(
        tokens=(TOKEN, OTHER_TOKEN),
        forbidden_tokens=(FORBIDDEN,),
        unknown_ids=frozenset({"no-such-message"}),
    )
    async with running_sandbox(config) as url:
        yield url
