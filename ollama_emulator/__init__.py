"""An emulator of Ollama's HTTP API for tests, benchmarks and trying the service without Ollama.

``Emulator`` serves it on a local port; ``Faults`` injects slowness and failures;
``ollama_emulator.content`` documents (and computes) the deterministic answers.
Run ``python -m ollama_emulator`` to serve it in the foreground.
"""

from ollama_emulator.app import create_app
from ollama_emulator.emulator import Emulator, refused_url
from ollama_emulator.models import ModelSpec, default_models
from ollama_emulator.runner import ThreadedServer
from ollama_emulator.state import EmulatorState, Faults, RecordedRequest

__all__ = [
    "Emulator",
    "EmulatorState",
    "Faults",
    "ModelSpec",
    "RecordedRequest",
    "ThreadedServer",
    "create_app",
    "default_models",
    "refused_url",
]
