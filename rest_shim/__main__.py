"""``python -m rest_shim``: the REST face alone, forwarding to GRPC_TARGET."""

from __future__ import annotations

import os
import sys

import uvloop

from server.config import ConfigError, Settings
from server.logs import configure_logging


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    from server.runner import run_rest

    return uvloop.run(run_rest(settings))


if __name__ == "__main__":
    sys.exit(main())
