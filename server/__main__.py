"""``python -m server [--with-rest]``: the gRPC server (and the REST shim beside it)."""

from __future__ import annotations

import argparse
import os
import sys

from server.config import settings_or_exit
from server.eventloop import run
from server.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument(
        "--with-rest", action="store_true", help="also serve the REST shim on HOST:PORT"
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    from server.runner import run_grpc

    return run(run_grpc(settings, with_rest=args.with_rest))


if __name__ == "__main__":
    sys.exit(main())
