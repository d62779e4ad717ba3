"""Screens: the main view with its flows, and those pushed over it (catalog, bench, fleet,
help, dialogs). A flow calls an action and shows its result; a screen asks the App for
something by posting a Message.

May import: ui.widgets, ui.messages, the actions, config, the domain, probes, the base modules
and Textual. Never ui.app or sparktop.cli.
"""
