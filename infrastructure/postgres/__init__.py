"""PostgreSQL adapters: the event store's environment, relay positions, single-active locks."""
