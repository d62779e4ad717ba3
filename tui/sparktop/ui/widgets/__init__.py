"""Panels of the main screen; each renders one part of the latest Snapshot."""
