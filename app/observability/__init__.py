"""Operability: the access log, Prometheus metrics and OpenTelemetry traces.

`facts` gathers what one request did while it runs (ids, model, upstream time, tokens); `access`
is the ASGI middleware that turns it into one log line and the HTTP metrics; `metrics` holds
every Prometheus series and the `/metrics` route; `upstream` times provider calls; `tracing`
sets up OpenTelemetry when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and is a no-op otherwise.
"""
