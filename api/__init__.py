"""Entry points: the CLI (``api.cli``), the HTTP API (``api.http``) and the processes
they run (``api.cli_processes``, the embedded runtime). They translate arguments and
requests into application services' calls, and results and errors into output."""
