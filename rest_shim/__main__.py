"""``python -m rest_shim``: the REST face alone, forwarding to GRPC_TARGET."""

from __future__ import annotations

import os
import sys

from server.config import settings_or_exit
from server.eventloop import run
from server.logs import configure_logging


def main() -> int:
    settings = settings_or_exit(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    from rest_shim.serving import run_rest

    return run(run_rest(settings))


if __name__ == "__main__":
    sys.exit(main())
