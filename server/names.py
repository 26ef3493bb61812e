"""Model names as Ollama resolves them, for matching names given in different forms."""

from __future__ import annotations


def canonical(model: str) -> str:
    """A model name as Ollama matches it: without case, without its default registry
    and namespace (registry.ollama.ai/library/), and a name without a tag means
    ":latest"."""
    name = model.strip().lower()
    for default in ("registry.ollama.ai/", "library/"):  # Ollama's default registry
        name = name.removeprefix(default)
    return name if ":" in name.rpartition("/")[2] else f"{name}:latest"
