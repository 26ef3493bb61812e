"""The models the emulator pretends to have pulled, and Ollama's model-name rules.

Names resolve like Ollama's: the tag defaults to ``latest`` ("bge-m3" is
"bge-m3:latest"), the default registry and namespace may be spelt out
("registry.ollama.ai/library/gpt-oss:20b" is "gpt-oss:20b"), and matching
ignores case.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

COMPLETION = "completion"
TOOLS = "tools"
INSERT = "insert"
VISION = "vision"
THINKING = "thinking"
EMBEDDING = "embedding"

_SIZE_SUFFIXES = MappingProxyType({"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12})


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One local model as ``/api/tags`` and ``/api/show`` describe it.

    ``always_thinks`` marks a model that reasons whatever ``think`` says (gpt-oss);
    other models with the "thinking" capability think unless ``think`` is false.
    ``embedding_dim`` is the length of the model's embedding vectors (and the
    ``<family>.embedding_length`` of ``/api/show``). ``capabilities`` is what
    ``/api/show`` lists and what the inference endpoints check: "completion" (chat
    and generate), "tools", "insert" (generate's ``suffix``), "vision" (images),
    "thinking" and "embedding".
    """

    name: str
    family: str
    parameter_size: str
    quantization_level: str
    size: int
    families: tuple[str, ...] | None = None
    format: str = "gguf"
    capabilities: tuple[str, ...] = (COMPLETION,)
    embedding_dim: int = 0
    context_length: int = 4096
    always_thinks: bool = False
    modified_at: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))

    @property
    def key(self) -> str:
        """The canonical ``model:tag`` name, as ``/api/tags`` lists it."""
        return canonical_name(self.name)

    @property
    def digest(self) -> str:
        """A stable 64-hex-digit digest derived from the name."""
        return hashlib.sha256(self.key.encode()).hexdigest()

    @property
    def all_families(self) -> list[str]:
        return list(self.families) if self.families is not None else [self.family]

    @property
    def parameter_count(self) -> int:
        """``parameter_size`` as a number ("20.9B" -> 20900000000)."""
        match = re.fullmatch(r"([\d.]+)([KMBT]?)", self.parameter_size.strip().upper())
        if match is None:
            return 0
        return int(float(match.group(1)) * _SIZE_SUFFIXES.get(match.group(2), 1))

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def details(self) -> dict[str, object]:
        """The ``details`` object of ``/api/tags``, ``/api/ps`` and ``/api/show``."""
        return {
            "parent_model": "",
            "format": self.format,
            "family": self.family,
            "families": self.all_families,
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


def default_models() -> list[ModelSpec]:
    """gpt-oss:20b (reasoning chat), bge-m3 (embeddings), llama3.2 (chat, no thinking),
    gemma3:4b (chat with images) and qwen2.5-coder:1.5b (code, fill-in-the-middle)."""
    return [
        ModelSpec(
            name="gpt-oss:20b",
            family="gptoss",
            parameter_size="20.9B",
            quantization_level="MXFP4",
            size=13793441244,
            capabilities=(COMPLETION, TOOLS, THINKING),
            embedding_dim=2880,
            context_length=131072,
            always_thinks=True,
            modified_at=datetime(2025, 8, 6, 12, 0, 0, tzinfo=UTC),
        ),
        ModelSpec(
            name="bge-m3:latest",
            family="bert",
            parameter_size="566.70M",
            quantization_level="F16",
            size=1157672605,
            capabilities=(EMBEDDING,),
            embedding_dim=1024,
            context_length=8192,
            modified_at=datetime(2025, 8, 5, 12, 0, 0, tzinfo=UTC),
        ),
        ModelSpec(
            name="llama3.2:latest",
            family="llama",
            parameter_size="3.2B",
            quantization_level="Q4_K_M",
            size=2019393189,
            capabilities=(COMPLETION, TOOLS),
            embedding_dim=3072,
            context_length=131072,
            modified_at=datetime(2025, 8, 4, 12, 0, 0, tzinfo=UTC),
        ),
        ModelSpec(
            name="gemma3:4b",
            family="gemma3",
            parameter_size="4.3B",
            quantization_level="Q4_K_M",
            size=3338801804,
            capabilities=(COMPLETION, VISION),
            embedding_dim=2560,
            context_length=131072,
            modified_at=datetime(2025, 8, 3, 12, 0, 0, tzinfo=UTC),
        ),
        ModelSpec(
            name="qwen2.5-coder:1.5b",
            family="qwen2",
            parameter_size="1.5B",
            quantization_level="Q4_K_M",
            size=986062089,
            capabilities=(COMPLETION, TOOLS, INSERT),
            embedding_dim=1536,
            context_length=32768,
            modified_at=datetime(2025, 8, 2, 12, 0, 0, tzinfo=UTC),
        ),
    ]


def canonical_name(name: str) -> str:
    """``name`` as Ollama displays it: default registry/namespace dropped, tag added."""
    rest = name.strip()
    prefix = DEFAULT_REGISTRY + "/"
    if rest.lower().startswith(prefix):
        rest = rest[len(prefix) :]
    prefix = DEFAULT_NAMESPACE + "/"
    if rest.lower().startswith(prefix):
        rest = rest[len(prefix) :]
    last = rest.rsplit("/", 1)[-1]
    if ":" not in last:
        rest = f"{rest}:{DEFAULT_TAG}"
    return rest


def qualified_name(name: str) -> str:
    """The fully qualified name Ollama puts in some errors (registry.ollama.ai/library/x:tag)."""
    short = canonical_name(name)
    path = short if "/" in short else f"{DEFAULT_NAMESPACE}/{short}"
    return f"{DEFAULT_REGISTRY}/{path}"


class ModelCatalog:
    """Immutable lookup of the emulator's models by any spelling of their name."""

    def __init__(self, models: list[ModelSpec]) -> None:
        self._models = tuple(sorted(models, key=lambda m: m.modified_at, reverse=True))
        self._by_key = {m.key.lower(): m for m in self._models}

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        """Most recently modified first, like ``/api/tags``."""
        return self._models

    def find(self, name: str) -> ModelSpec | None:
        if not name.strip():
            return None
        return self._by_key.get(canonical_name(name).lower())
