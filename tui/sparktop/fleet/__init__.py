"""Other boxes: the configured hosts, reached over the user's SSH or a `sparktop agent`; their
status fetched with per-host timeouts, serve / stop / test run on them, and the agent that
serves this box's status.

May import: servers (HTTP client), catalog, probes and the base modules. Never config (hosts
arrive as `Host` values, which config builds with `parse_hosts` from here), the actions, the
faces or Textual.
"""

AGENT_PORT = 7377
"""Where `sparktop agent` listens unless told otherwise."""
AGENT_TOKEN_ENV = "SPARKTOP_AGENT_TOKEN"
"""The variable `sparktop agent` reads its token from unless told otherwise (here, not in
agent.py, so building the command line does not import the HTTP server)."""
