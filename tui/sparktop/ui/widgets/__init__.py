"""Panels and tables of the main screen; each renders one part of the latest Snapshot.

May import: the Snapshot and what it holds (snapshot, servers.info), the shared text helpers
(servers.rows, memview, history, units) and Textual. Never screens, the App, the actions or
sparktop.cli: a widget shows, it does not act.
"""
