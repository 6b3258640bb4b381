"""Entry points: the CLI, the embedded runtime and (later) the HTTP API and processes."""
