"""Lanes: generation slots and queues per model (LLM_MODEL_LIMITS), so that a burst of
cheap embeddings never waits behind slow answers of a 20B model, nor takes the slots
they need. A model (or pattern, ``gpt-oss*``) named there has a lane of its own, with
its number of slots and a queue as long as LLM_MAX_QUEUE; every other model shares the
default lane ("*": LLM_MAX_CONCURRENT). A model in two patterns takes the first.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from server.config import Settings
from server.limiter import GenerationLimiter
from server.names import canonical

DEFAULT_LANE = "*"


class Lanes:
    def __init__(self, settings: Settings) -> None:
        def limiter(slots: int) -> GenerationLimiter:
            return GenerationLimiter(slots, settings.max_queue, settings.queue_timeout)

        self.default = limiter(settings.max_concurrent)
        self._named = [(pattern, limiter(slots)) for pattern, slots in settings.model_limits]

    def for_model(self, model: str) -> GenerationLimiter:
        full = canonical(model)
        for pattern, lane in self._named:
            if fnmatchcase(model, pattern) or fnmatchcase(full, pattern):
                return lane
        return self.default

    def all(self) -> list[tuple[str, GenerationLimiter]]:
        """Every lane by name, the default last."""
        return [*self._named, (DEFAULT_LANE, self.default)]

    @property
    def running(self) -> int:
        return sum(lane.running for _, lane in self.all())

    @property
    def queued(self) -> int:
        return sum(lane.queued for _, lane in self.all())
