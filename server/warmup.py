"""Warm models (LLM_PRELOAD): loaded on every host that holds them when the service
starts, whenever a host comes back, and whenever a check finds one no longer loaded
(a host restarted between two checks, a model unloaded), so requests find them in
memory instead of waiting tens of seconds for a cold load. Ollama loads a model for an
empty prompt; the load runs in the background, outside the generation lanes, one at a
time per host and model.
"""

from __future__ import annotations

import asyncio
import logging

from server.config import Settings
from server.errors import LlmError
from server.health import OllamaHealth
from server.hosts import Host, OllamaPool
from server.names import canonical
from server.validation import keep_alive_policy

log = logging.getLogger("llm.warmup")


class Warmer:
    def __init__(self, pool: OllamaPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._loading: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def on_check(self, health: OllamaHealth) -> None:
        """After each health check: load what an up host holds and has not loaded."""
        for host in self._pool.hosts:
            if not host.up or host.models is None:
                continue
            for model in self._settings.preload:
                key, name = (host.url, model), canonical(model)
                if host.holds(name) and name not in host.loaded and key not in self._loading:
                    self._loading[key] = asyncio.create_task(self._load(host, model))

    async def _load(self, host: Host, model: str) -> None:
        body: dict[str, object] = {"model": model, "prompt": ""}
        alive = keep_alive_policy("", self._settings)
        if alive is not None:
            body["keep_alive"] = alive
        try:
            await host.client.generate(body, self._settings.timeout)
        except LlmError as exc:
            log.warning("PRELOAD %s on %s failed: %s", model, host.url, exc.message)
            return
        finally:
            self._loading.pop((host.url, model), None)
        host.mark_loaded(canonical(model))
        log.info("PRELOAD %s loaded on %s", model, host.url)

    async def aclose(self) -> None:
        tasks = list(self._loading.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
