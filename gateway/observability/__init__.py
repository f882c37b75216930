"""What an operator sees: request ids and access logs (requests), structured logs (logs), Prometheus
metrics (metrics), OpenTelemetry traces (tracing), and the GraphQL side of all of them (operation)."""
