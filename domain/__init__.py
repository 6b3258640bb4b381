"""Pure domain model: the BulkAction aggregate, its chunk streams and the entity rules.

Imports only the standard library, ``eventsourcing.domain`` and pydantic (no I/O).
"""
