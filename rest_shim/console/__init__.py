"""The operator console: a page at ``GET /console`` (static files in ``static/``, no
build step) and the JSON it reads (``/console/api/...``), built from the RPCs with the
caller's key, as every face is."""

from rest_shim.console.routes import console_routes

__all__ = ["console_routes"]
