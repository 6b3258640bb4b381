"""Outbound HTTP (the standard library's ``http.client``): webhook deliveries."""
