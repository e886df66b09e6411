"""OpenTelemetry traces, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

On, every request gets a server span from Litestar's OpenTelemetry plugin, and Rapport adds
spans of its own for each unit of work, each upstream model call and each hosted tool call;
spans go to the OTLP/HTTP exporter, which reads the standard `OTEL_*` variables (endpoint,
headers, `OTEL_SERVICE_NAME`, default "rapport"). Off, `span()` hands back one shared no-op
context manager: the hot path pays a function call, not a tracer.

The provider is Rapport's own rather than the global one, so a test can point it at an
in-memory exporter and reset it afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar.plugins import PluginProtocol
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
QUIET_ROUTES = ["/health", "/ready", "/metrics"]

_NOOP = contextlib.nullcontext()
_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def configure(exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Build the tracer provider once per process: with `exporter` (tests), or with OTLP when
    the endpoint variable is set; otherwise tracing stays off and None is returned."""
    global _provider, _tracer
    if _provider is not None:
        return _provider
    if exporter is None and not os.environ.get(ENDPOINT_VARIABLE):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from app import __version__

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "rapport",
         "service.version": __version__}
    )  # fmt: skip
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("rapport")
    return provider


def reset() -> None:
    """Turn tracing off again (tests)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def enabled() -> bool:
    return _tracer is not None


def litestar_plugin() -> PluginProtocol | None:
    """Litestar's OpenTelemetry plugin on Rapport's provider, or None while tracing is off."""
    if _provider is None:
        return None
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    config = OpenTelemetryConfig(tracer_provider=_provider, exclude=QUIET_ROUTES)
    return OpenTelemetryPlugin(config)


def span(
    name: str, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A span that is the current one for its body (awaited code only: never across a yield
    of an async generator, whose context belongs to whoever iterates it)."""
    if _tracer is None:
        return _NOOP
    return _tracer.start_as_current_span(name, attributes=attributes)


@contextlib.contextmanager
def _detached(name: str, attributes: Mapping[str, Any] | None) -> Iterator[Any]:
    assert _tracer is not None
    current = _tracer.start_span(name, attributes=attributes)
    try:
        yield current
    except Exception as exc:
        current.record_exception(exc)
        raise
    finally:
        current.end()


def detached_span(
    name: str, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A span that never becomes the current one: safe around the yields of a generator."""
    if _tracer is None:
        return _NOOP
    return _detached(name, attributes)
