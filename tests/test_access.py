"""Access control (API keys on both faces), TLS on the gRPC port, and CORS."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from server.config import ConfigError, Settings
from tests.conftest import RestStarter, StackFactory, bearer

KEY = "k-3f9a-secret"


async def test_grpc_requires_a_key_when_keys_are_configured(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await make_stack(api_keys=(KEY, "another-key"))
    request = pb.ChatRequest(message="hi", model="llama3.2")
    for metadata in ((), bearer("wrong"), (("authorization", KEY),)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.stub.Chat(request, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stack.stub.ChatStream(pb.ChatStreamRequest(request=request)):
            pass
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    reply = await stack.stub.Chat(request, metadata=bearer(KEY))
    assert reply.response == "Echo: hi"
    assert (await stack.stub.Chat(request, metadata=bearer("another-key"))).response
    # Probes stay open.
    assert (await stack.stub.Health(pb.HealthRequest())).status == "healthy"
    health = health_pb2_grpc.HealthStub(stack.channel)
    assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1
    assert KEY not in caplog.text


async def test_rest_requires_the_same_header(
    make_stack: StackFactory, serve_rest: RestStarter
) -> None:
    stack = await make_stack(api_keys=(KEY,))
    url = await serve_rest(stack)
    body = {"message": "hi", "model": "llama3.2"}
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/chat", json=body)
        assert r.status_code == 401
        assert r.json()["code"] == "unauthenticated"
        assert r.headers["www-authenticate"] == "Bearer"
        wrong = await client.post("/chat", json=body, headers={"authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert (await client.get("/stats")).status_code == 401
        assert (await client.get("/")).status_code == 401
        ok = await client.post("/chat", json=body, headers={"authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        for path in ("/", "/stats", "/models"):
            reply = await client.get(path, headers={"authorization": f"Bearer {KEY}"})
            assert reply.status_code == 200, path
        # Health endpoints stay open for probes.
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/livez")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


def test_keys_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# service keys\nalpha\n\nbeta\n")
    s = Settings.from_env({"LLM_API_KEYS": "gamma", "LLM_API_KEYS_FILE": str(path)})
    assert s.api_keys == ("gamma", "alpha", "beta")
    with pytest.raises(ConfigError, match="LLM_API_KEYS_FILE"):
        Settings.from_env({"LLM_API_KEYS_FILE": str(tmp_path / "missing")})


async def test_tls_on_the_grpc_port(make_stack: StackFactory, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    stack = await make_stack(tls_cert=str(cert_path), tls_key=str(key_path))

    credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{stack.server.port}",
        credentials,
        options=[("grpc.ssl_target_name_override", "localhost")],
    ) as channel:
        reply = await pb_grpc.LlmServiceStub(channel).Chat(
            pb.ChatRequest(message="hi", model="llama3.2")
        )
        assert reply.response == "Echo: hi"
    # Plaintext on the TLS port fails.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.server.port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.LlmServiceStub(plain).Health(pb.HealthRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_needs_both_files(tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    path.write_text("x")
    with pytest.raises(ConfigError, match="together"):
        Settings.from_env({"GRPC_TLS_CERT": str(path)})


async def test_cors_off_by_default(rest: httpx.AsyncClient) -> None:
    r = await rest.get("/health", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_cors_allows_only_listed_origins(
    make_stack: StackFactory, start_shim: Callable[..., str]
) -> None:
    stack = await make_stack(cors_origins=("https://app.example",))
    url = start_shim(replace(stack.settings, grpc_target=stack.target))
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    async with httpx.AsyncClient(base_url=url) as client:
        ok = await client.options("/chat", headers={"origin": "https://app.example", **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-credentials" not in ok.headers
        bad = await client.options("/chat", headers={"origin": "https://evil.example", **preflight})
        assert bad.headers.get("access-control-allow-origin") != "https://evil.example"
        get = await client.get("/livez", headers={"origin": "https://app.example"})
        assert get.headers["access-control-allow-origin"] == "https://app.example"


def test_wildcard_origin_is_refused() -> None:
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": "*"})


@pytest.mark.parametrize("keys", [(KEY,), ()], ids=["keys on", "keys off"])
async def test_an_authorization_header_grpc_cannot_carry_is_no_key(
    make_stack: StackFactory, serve_rest: RestStarter, keys: tuple[str, ...]
) -> None:
    stack = await make_stack(api_keys=keys)
    url = await serve_rest(stack)
    async with httpx.AsyncClient(base_url=url) as client:
        # (uvicorn itself refuses control characters other than tab: 400)
        for value in (b"Bearer \t9(E='=", b"Bearer cl\xe9"):
            r = await client.get("/models", headers={b"authorization": value})
            assert r.status_code == (401 if keys else 200), (value, r.text)
