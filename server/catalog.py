"""What the Ollama hosts hold: a model's description and capabilities (from
/api/show, kept for OLLAMA_CACHE_DURATION), and the models loaded on every host.

The service checks a capability itself where Ollama would fail late or unclearly: a
model without ``vision`` given images fails inside Ollama's runner after the model
loaded (a 500); here it is INVALID_ARGUMENT before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time

from server.errors import InvalidArgument, LlmError
from server.hosts import Host, OllamaPool
from server.ollama_client import JsonObject

log = logging.getLogger("llm.catalog")


class Catalog:
    def __init__(self, pool: OllamaPool, cache_duration: float, timeout: float) -> None:
        self._pool = pool
        self._ttl = cache_duration
        self._timeout = timeout
        self._shown: dict[str, tuple[float, JsonObject]] = {}

    async def show(self, model: str) -> JsonObject:
        """Ollama's /api/show answer for ``model`` (cached)."""
        now = time.monotonic()
        cached = self._shown.get(model)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        data = await self._pool.call(lambda c: c.show(model, self._timeout), model)
        if len(self._shown) >= 256:  # names are bounded, but keep the cache small
            self._shown.clear()
        self._shown[model] = (now, data)
        return data

    async def require(self, model: str, capability: str, why: str, field: str) -> None:
        """INVALID_ARGUMENT unless ``model`` has ``capability`` (when Ollama says); the
        error is about ``field``, the request field that needs the capability."""
        data = await self.show(model)
        capabilities = data.get("capabilities")
        if isinstance(capabilities, list) and capability not in capabilities:
            listed = ", ".join(str(c) for c in capabilities) or "none"
            raise InvalidArgument(
                f"model '{model}' cannot take {why}: it lacks the '{capability}' capability "
                f"(it has: {listed})",
                field=field,
            )

    async def running(self) -> list[tuple[str, JsonObject]]:
        """(host, model) for every model loaded on an up host; a host that fails to
        answer is left out (and logged), the others still count."""
        hosts = [h for h in self._pool.hosts if h.up]

        async def one(host: Host) -> list[JsonObject]:
            try:
                async with asyncio.timeout(self._timeout):
                    return await host.client.running()
            except (LlmError, TimeoutError) as exc:
                log.warning("MODELS %s did not list its loaded models: %s", host.url, exc)
                return []

        answers = await asyncio.gather(*(one(h) for h in hosts))
        return [(h.url, m) for h, models in zip(hosts, answers, strict=True) for m in models]
