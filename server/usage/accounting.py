"""The usage ledger and the quotas, on one store: opened (schema created or migrated)
before the server serves, closed after it drained. The store is there when the ledger
is on (LLM_LEDGER) or a caller has limits; quotas work with the ledger off."""

from __future__ import annotations

from prometheus_client.registry import Collector

from server.config import Settings
from server.metrics import counters
from server.usage.callers import Callers
from server.usage.ledger import Ledger
from server.usage.quotas import Quotas
from server.usage.store import Store, open_store

# A lease outlives the longest request it can cover, then expires by itself (a replica
# that died holding it).
LEASE_MARGIN = 60.0


class Accounting:
    def __init__(self, settings: Settings, callers: Callers) -> None:
        limited = any(c.limited for c in callers.named)
        self.store: Store | None = (
            open_store(settings.database_url, settings.data_dir)
            if settings.ledger or limited
            else None
        )
        self.ledger = (
            Ledger(self.store, settings.ledger_retention_days)
            if settings.ledger and self.store is not None
            else None
        )
        lease = settings.timeout + settings.queue_timeout + LEASE_MARGIN
        self.quotas = Quotas(self.store, lease)

    def collector(self) -> Collector:
        ledger = self.ledger

        def read() -> list[tuple[str, str, float]]:
            if ledger is None:
                return []
            return [
                ("llm_ledger_rows_written", "Ledger rows written.", ledger.written),
                (
                    "llm_ledger_dropped_rows",
                    "Ledger rows dropped (queue full or the store failing).",
                    ledger.dropped,
                ),
            ]

        return counters(read)

    async def start(self) -> None:
        if self.store is not None:
            try:
                await self.store.open()
            except BaseException:
                await self.store.close()
                raise
        if self.ledger is not None:
            await self.ledger.start()

    async def aclose(self) -> None:
        """Writes what is queued, then closes the store."""
        if self.ledger is not None:
            await self.ledger.aclose()
        await self.quotas.settled()
        if self.store is not None:
            await self.store.close()
