"""Use cases of the bulk action platform and the ports they need."""
