"""OpenTelemetry tracing; spans cross Kafka in message headers (FastStream's middleware)."""

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def make_tracer_provider(service: str, otlp_endpoint: str | None) -> TracerProvider:
    """A tracer provider for one service; spans are exported only when an endpoint is set."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"healthmesh-{service}"}))
    if otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install_tracing(app: FastAPI, provider: TracerProvider) -> None:
    """Trace every HTTP request of `app` with `provider` (passed explicitly, never set globally,
    so several apps can live in one test process)."""
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz,metrics"
    )
