"""Projectors: turn events into read models, resumable and idempotent."""
