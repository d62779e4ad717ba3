"""Benchmarks of served models: the API run (timed from the client), llama-bench, the quality
smoke, and the results store (runs kept with model, quant, engine, serve flags, host and
hardware; champions per mode; CSV/JSON export).

May import: servers (HTTP client, smoke and coherence checks, engine tools), catalog, probes
(what a run was measured on) and the base modules. Never config (a rule arrives as a
`ChampionRule` value), the actions, the faces or Textual.
"""
