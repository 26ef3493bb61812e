"""``python -m ollama_emulator``: serve the emulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import functools
import gc
import socket
import sys
from collections.abc import Sequence

import uvicorn

from ollama_emulator.app import create_app
from ollama_emulator.runner import close_client_connection
from ollama_emulator.state import EmulatorState


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ollama_emulator",
        description="Serve an emulator of Ollama's HTTP API (deterministic echo answers).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=11434, help="port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--token-delay",
        type=float,
        default=0.02,
        help="seconds between generated tokens (default: %(default)s)",
    )
    parser.add_argument(
        "--load-delay",
        type=float,
        default=0.0,
        help="seconds of model load per request (default: %(default)s)",
    )
    parser.add_argument(
        "--cold-load-delay",
        type=float,
        default=0.0,
        help="seconds a model that is not loaded takes to load (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    state = EmulatorState(keep=0)  # nobody reads the requests of a standalone emulator
    state.faults.token_delay = args.token_delay
    state.faults.load_delay = args.load_delay
    state.faults.cold_load_delay = args.cold_load_delay
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # see runner.py
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    config = uvicorn.Config(
        create_app(state), log_level="warning", lifespan="auto", ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    state.connection_closer = functools.partial(close_client_connection, server)
    gc.freeze()  # what start-up built lives on: keep it out of every collection
    print(f"Ollama emulator listening on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
