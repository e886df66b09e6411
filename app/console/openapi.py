"""The OpenAPI viewers, on assets Rapport serves itself: Litestar's defaults load from CDNs, and
an offline deployment (or one whose users' browsers cannot reach them) got blank pages.

Swagger UI is served at `/openapi` and `/openapi/swagger`, the schema at
`/openapi/openapi.json`; the other viewers Litestar offers by default (ReDoc, Elements, RapiDoc,
YAML) are not, since each would need its own vendored bundle (see static/VENDORED.md).
"""

from __future__ import annotations

from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, SwaggerRenderPlugin

SWAGGER = "/console/static/vendor/swagger-ui"
_FAVICON = "<link rel='icon' href='/console/static/favicon.svg' type='image/svg+xml'>"


def openapi_viewers() -> list[OpenAPIRenderPlugin]:
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
            favicon=_FAVICON,
        ),
        JsonRenderPlugin(favicon=_FAVICON),
    ]
