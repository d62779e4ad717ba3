"""The model catalog: entries, serve profiles, where their files are and whether they fit."""

from sparktop.catalog.entry import ModelEntry, ServeProfile
from sparktop.catalog.loader import Catalog, load_catalog

__all__ = ["Catalog", "ModelEntry", "ServeProfile", "load_catalog"]
