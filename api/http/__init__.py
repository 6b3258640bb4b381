"""The HTTP API (FastAPI): translates HTTP to the core's use cases and read models."""
