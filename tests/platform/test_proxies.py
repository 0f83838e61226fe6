"""Client addresses behind proxies: per-IP limits key on the address a trusted proxy
forwarded (`X-Forwarded-For`, `TRUSTED_PROXIES`), and on the peer for everyone else.

The in-process client connects from 203.0.113.7 (tests/conftest.py `make_client`).
"""

from __future__ import annotations

import ipaddress
import uuid

import httpx
import pytest
from pydantic import ValidationError

from app.middleware import forwarded_client, trusted_networks
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import make_client
from tests.helpers import gql

LOGIN = """
mutation Login($input: LoginInput!) { login(input: $input) { errors { code } } }
"""
PEER_NETWORK = "203.0.113.0/24"  # the in-process client's peer address is in it


async def login_code(client: httpx.AsyncClient, forwarded_for: str | None) -> str:
    """A failed login's error code, from a fresh account (so only the per-IP limit counts)."""
    data = {"login": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong-password"}
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for is not None else {}
    body = await gql(client, LOGIN, {"input": data}, headers=headers)
    [error] = body["data"]["login"]["errors"]
    code: str = error["code"]
    return code


async def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(runtime: Runtime) -> None:
    limits = {"trusted_proxies": (PEER_NETWORK,), "login_ip_max_attempts": 2}
    async with make_client(runtime, **limits) as client:
        assert await login_code(client, "198.51.100.1") == "INVALID_CREDENTIALS"
        assert await login_code(client, "198.51.100.1") == "INVALID_CREDENTIALS"
        assert await login_code(client, "198.51.100.1") == "RATE_LIMITED"
        # The client can't escape by writing an address of its own before the proxy's.
        assert await login_code(client, "192.0.2.66, 198.51.100.1") == "RATE_LIMITED"
        # Another client behind the same proxy has a bucket of its own, and so has the proxy.
        assert await login_code(client, "198.51.100.2") == "INVALID_CREDENTIALS"
        assert await login_code(client, None) == "INVALID_CREDENTIALS"


async def test_from_an_untrusted_peer_the_header_is_ignored(runtime: Runtime) -> None:
    async with make_client(runtime, login_ip_max_attempts=2) as client:  # trusts 127.0.0.1
        assert await login_code(client, "198.51.100.1") == "INVALID_CREDENTIALS"
        assert await login_code(client, "198.51.100.2") == "INVALID_CREDENTIALS"
        # Every address the client claims shares the peer's bucket.
        assert await login_code(client, "198.51.100.3") == "RATE_LIMITED"
        assert await login_code(client, None) == "RATE_LIMITED"


TRUSTED = trusted_networks(["203.0.113.0/24", "10.0.0.0/8", "2001:db8::/32"])
PEER = "203.0.113.7"
CASES = {
    "no header": (PEER, None, PEER),
    "one hop": (PEER, "198.51.100.1", "198.51.100.1"),
    "a chain of trusted proxies": (PEER, "198.51.100.1, 10.1.2.3, 10.9.9.9", "198.51.100.1"),
    "a spoofed entry left of the client": (PEER, "192.0.2.66,198.51.100.1", "198.51.100.1"),
    "an untrusted peer": ("192.0.2.1", "198.51.100.1", "192.0.2.1"),
    "a peer that is no IP": ("testclient", "198.51.100.1", "testclient"),
    "every hop trusted": (PEER, "10.0.0.1, 10.0.0.2", "10.0.0.1"),
    "a port": (PEER, "198.51.100.1:4711", "198.51.100.1"),
    "IPv6 with a port": (PEER, "[2001:db9::1]:4711", "2001:db9::1"),
    "a trusted IPv6 hop with a port": (PEER, "198.51.100.1, [2001:db8::1]:80", "198.51.100.1"),
    "IPv6": ("2001:db8::7", "2001:db9::1", "2001:db9::1"),
    "an IPv6 address written long": (PEER, "2001:0db9:0000::0001", "2001:db9::1"),
    "garbage from the proxy": (PEER, "unknown", PEER),
    "garbage left of a trusted hop": (PEER, "<script>, 10.0.0.1", "10.0.0.1"),
    "an empty header": (PEER, " ", PEER),
}


@pytest.mark.parametrize(("peer", "header", "client"), CASES.values(), ids=CASES.keys())
def test_the_client_address(peer: str, header: str | None, client: str) -> None:
    assert forwarded_client(peer, header, TRUSTED) == client


def test_nothing_is_trusted_without_proxies() -> None:
    assert forwarded_client(PEER, "198.51.100.1", trusted_networks([])) == PEER


def test_trusted_networks_parse_addresses_and_cidrs() -> None:
    assert trusted_networks(["127.0.0.1", "10.0.0.0/8", "::1"]) == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_the_setting_is_a_comma_separated_list_of_ips_and_cidrs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert Settings(_env_file=None).trusted_proxies == ("127.0.0.1",)
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    assert Settings(_env_file=None).trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1")
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert Settings(_env_file=None).trusted_proxies == ()
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,lb.internal")
    with pytest.raises(ValidationError, match=r"lb\.internal"):
        Settings(_env_file=None)
