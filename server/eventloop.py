"""The entry points' event loop: uvloop where it is installed (not on Windows, where
the package has no build), asyncio's own loop otherwise; and what both entry points
(``python -m server``, ``python -m rest_shim``) do to it at start-up."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop``: the process drains, then exits."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def freeze_startup_objects() -> None:
    """Modules, descriptors and servers built at start-up live as long as the process:
    moved out of the collector's generations, they are not traversed again by every
    full collection (a pause of tens of ms in the middle of streams)."""
    gc.collect()
    gc.freeze()
