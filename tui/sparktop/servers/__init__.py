"""Inference servers: discovery, polling, serve/stop, tests and client config (no Textual)."""
