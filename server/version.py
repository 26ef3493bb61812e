"""The service's version, one string for ``GET /``, the OpenAPI document and the image
label: the installed package's (``version`` in pyproject.toml)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def service_version() -> str:
    try:
        return version("llm-service")
    except PackageNotFoundError:  # sources run without being installed
        return "0+unknown"


SERVICE_VERSION = service_version()
