"""The full-screen face (Textual): the App (lifecycle, themes, screens), its screens and
widgets, themes from YAML, and the compositor and driver that keep it cheap when idle.

May import: the actions, config, the domain, probes, the base modules and Textual. Never
sparktop.cli (the launcher, sparktop.main, starts the view). Inside: app > screens > widgets;
screens reach the App through Messages, never by importing it.
"""
