"""The Textual front end: a thin view over the core (probes, snapshot, config)."""
