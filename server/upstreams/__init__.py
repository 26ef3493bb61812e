"""Upstream kinds behind one client interface (``OllamaClient``'s): ``ollama`` (Ollama's
native API) and ``openai`` (vLLM, llama.cpp's server, SGLang: ``upstreams.openai``)."""

from __future__ import annotations

from server.config import Settings, Upstream
from server.ollama_client import OllamaClient
from server.upstreams.openai import OpenAIClient


def client(upstream: Upstream, url: str, settings: Settings) -> OllamaClient:
    """The client for ``url`` of ``upstream``; an openai one sends its API key."""
    headers = None
    if upstream.kind == "openai" and upstream.api_key:
        headers = {"Authorization": f"Bearer {upstream.api_key}"}
    kind = OpenAIClient if upstream.kind == "openai" else OllamaClient
    return kind(
        url,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        max_line_bytes=settings.ollama_max_line_bytes,
        headers=headers,
    )
