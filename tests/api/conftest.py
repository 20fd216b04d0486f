"""Fixtures for the API tests: the app over the fake cluster, with a token per role and an audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hakeeper.api.app import build_app
from hakeeper.api.audit import AuditLog
from hakeeper.api.auth import Role, TokenStore
from hakeeper.api.fake import FakeCluster
from hakeeper.api.routing import Services
from tests.api.helpers import NOW, Env, sample_cib


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    fake = FakeCluster(sample_cib(), cluster_name="test", now=NOW)
    fake.publish("cluster", "the cluster started")
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {role.text: store.create(f"{role.text}-user", role, NOW) for role in Role}
    audit = AuditLog(tmp_path / "audit.jsonl")
    app = build_app(Services(handle=fake, tokens=store, audit=audit))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield Env(fake, tokens, audit, store, client)
