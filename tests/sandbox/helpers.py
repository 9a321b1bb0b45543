"""Talking to a real sandbox the way the dispatcher will: aiohttp client, real sockets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

TOKEN = "partner-TOKEN-0123456789"
OTHER_TOKEN = "second-partner-token-xyz"
FORBIDDEN = "forbidden-partner-token"
HEADERS = {
    "Accept": "application/vnd.api.v2+json",
    "Content-Type": "application/json",
}


def item(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "232674",
        "status": 1,
        "payment_sum": 4.54,
        "currency_iso": "RUB",
        "parts_amount": 2,
    }
    base.update(overrides)
    return base


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def code(self) -> int | None:
        return self.json()["meta"].get("code")

    @property
    def message(self) -> str:
        return self.json()["meta"]["message"]


async def post_statuses(
    session: aiohttp.ClientSession,
    base_url: str,
    body: Any = None,
    *,
    token: str = TOKEN,
    authorization: str | None = None,
    omit_authorization: bool = False,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Answer:
    """POST to ``token``'s callback with the contract's headers unless told otherwise.

    ``body`` goes through ``json.dumps`` (the floats in test bodies are short literals such as
    4.54, whose JSON text is exactly that literal); ``raw`` sends bytes as they are.
    """
    sent_headers = dict(HEADERS if headers is None else headers)
    if not omit_authorization:
        sent_headers["Authorization"] = authorization or f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    url = f"{base_url}/smsprovider/status/callback/{token}"
    # No automatic Accept/Content-Type: the test decides exactly which headers are sent.
    async with session.post(
        url, data=data, headers=sent_headers, skip_auto_headers=("Accept", "Content-Type")
    ) as response:
        return Answer(response.status, dict(response.headers), await response.text())


async def received(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    async with session.get(f"{base_url}/_sandbox/received") as response:
        assert response.status == 200
        return await response.json()
