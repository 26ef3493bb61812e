"""Upstream kinds behind one client interface (``OllamaClient``'s): ``ollama`` (Ollama's
native API) and ``openai`` (vLLM, llama.cpp's server, SGLang: ``upstreams.openai``)."""

from __future__ import annotations

from server.config import Settings, Upstream
from server.ollama_client import OllamaClient
from server.upstreams.openai import OpenAIClient


def client(upstream: Upstream, url: str, settings: Settings) -> OllamaClient:
    """The client for ``url`` of ``upstream``."""
    if upstream.kind == "openai":
        return OpenAIClient(
            url,
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
            max_line_bytes=settings.ollama_max_line_bytes,
            api_key=upstream.api_key,
        )
    return OllamaClient(
        url,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        max_line_bytes=settings.ollama_max_line_bytes,
    )
