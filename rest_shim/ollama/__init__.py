"""Ollama's own API (``/api/...``) on the service: the face every Ollama client speaks.

``requests`` maps Ollama's request bodies onto ``llm.v1``, ``answers`` maps the answers
back as Ollama writes them, ``routes`` holds the routes (each one RPC) and the error
shape. Served on the REST port, and optionally alone on a port of its own.
"""
