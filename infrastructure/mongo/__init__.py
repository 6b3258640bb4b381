"""MongoDB adapters (pymongo): entity store, read models and quota gate.

Nothing connects at import time; each adapter opens its client and creates its
indexes when constructed. The adapters keep to single-document atomic operations
(no multi-document transactions), so they stay correct on a standalone server and
on servers that only speak the wire protocol; see ``docs/mongodb-gaps.md``.
"""
