"""The model catalog: entries and serve profiles from the shipped and the user's YAML, where
their files are on disk, GGUF metadata, and whether a model fits in memory.

May import: downloads (file checks), the engine adapters (servers.engines: engine names and
fit facts) and the base modules. Never the rest of servers, bench, fleet, config (settings
arrive as plain values), the actions, the faces or Textual.
"""

from sparktop.catalog.entry import ModelEntry, ServeProfile
from sparktop.catalog.loader import Catalog, load_catalog

__all__ = ["Catalog", "ModelEntry", "ServeProfile", "load_catalog"]
