"""Adapters, one folder per technology, and the single composition root (``bootstrap``)."""
