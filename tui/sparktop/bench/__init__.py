"""Benchmarks of served models: API (client-timed) and llama-bench; results kept (no Textual)."""
