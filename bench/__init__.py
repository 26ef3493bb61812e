"""What the service costs on top of Ollama: ``python -m bench`` (see ``bench.run``)."""
