"""Wires the console into the app: its router, its templates and its static files.

One plugin so that `app/asgi.py` (the only wiring module) gains a line, not a section. The
console reads the process resources the app's lifespan puts on `app.state` (runtime, services),
so it needs nothing of its own at start-up.
"""

from __future__ import annotations

from pathlib import Path

from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.plugins import InitPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from app.console.routes import console_router
from app.console.templating import template_engine

PACKAGE = Path(__file__).parent
STATIC = PACKAGE / "static"


class ConsolePlugin(InitPlugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if app_config.template_config is not None:
            raise RuntimeError("the console brings its own template config; wire one only")
        app_config.template_config = TemplateConfig(instance=template_engine())
        app_config.route_handlers.extend(
            [
                console_router(),
                create_static_files_router(
                    path="/console/static",
                    directories=[STATIC],
                    name="console-static",
                    # Not fingerprinted: pages ask for `?v=<version>`, so an hour is safe.
                    cache_control=CacheControlHeader(max_age=3600, public=True),
                    include_in_schema=False,
                ),
            ]
        )
        return app_config
