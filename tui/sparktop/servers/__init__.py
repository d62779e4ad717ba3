"""Inference servers on this box: discovery in the process table, polling (/health, /metrics),
the engine adapters (`engines/`), serve and stop (`supervisor`), the registry of servers
sparktop started, tests, and client configuration.

May import: catalog, downloads, probes and the base modules. Never config (settings arrive as
plain values), bench, fleet, the actions, the faces or Textual.
"""
