"""The web console: pages over what Rapport stored, served by Rapport itself under /console.

`ConsolePlugin` wires it into the app (routes, templates, static assets); `openapi_viewers`
serves the OpenAPI pages from the same vendored assets, so nothing loads from a CDN.
"""

from app.console.openapi import openapi_viewers
from app.console.plugin import ConsolePlugin

__all__ = ["ConsolePlugin", "openapi_viewers"]
