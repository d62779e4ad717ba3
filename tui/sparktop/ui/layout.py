"""How the main screen's rows are shared: panels take what their content needs, the servers
table the rest, and the memory history chart only rows nobody else wants.

A pure function of a few counts, worked out again when one of them changes (a resize, a
server more or less, a hint that wraps), never per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

BOX = 2
"""Border rows of a boxed panel."""
BARS = 2
"""The top bar and the footer."""
CHART_HEAD = 2
"""The blank line and the title above the memory chart."""
MIN_CHART = 4
MAX_CHART = 10  # taller charts cost repaints without telling more
SERVER_ROWS_SEEN = 4
"""Server rows kept on screen however small the window (more scroll)."""
SERVERS_SHARE = 0.6
"""Before the chart gets a row, the servers box has this share of the window."""
DOWNLOADS_SHARE = 0.3


@dataclass(frozen=True)
class Needs:
    height: int
    """Rows of the window."""
    wide: bool
    """Memory and GPUs side by side."""
    memory: int
    """Rows of the memory panel's text without a chart."""
    gpus: int
    """Rows of the GPU panel's text."""
    servers: int
    downloads: int
    """Rows of the downloads table (0: the box is hidden)."""


@dataclass(frozen=True)
class Plan:
    memory: int
    """Height of the memory box, borders included."""
    gpus: int
    """Height of the GPUs box (it scrolls when its text is taller)."""
    system: int
    """Height of the memory and GPU boxes together."""
    chart: int
    """Rows of the memory history chart; 0: a sparkline instead."""


def plan(needs: Needs) -> Plan:
    body = needs.height - BARS
    downloads = 0
    if needs.downloads:
        downloads = min(BOX + 1 + needs.downloads, int(needs.height * DOWNLOADS_SHARE))
    servers_floor = BOX + 1 + min(max(needs.servers, 1), SERVER_ROWS_SEEN)
    servers_want = max(BOX + 1 + max(needs.servers, 1), int(body * SERVERS_SHARE))
    room = body - downloads - servers_floor  # for the panels, the servers keeping a few rows
    # never taller than the room (its last lines cut), so the servers keep their rows
    memory = max(BOX + 1, min(BOX + needs.memory, room - (0 if needs.wide else BOX + 1)))
    if needs.wide:
        gpus = max(min(BOX + needs.gpus, room), BOX + 1)
        # beside a taller GPU box the chart's rows cost the servers nothing
        spare = max(body - downloads - servers_want - memory, gpus - memory)
    else:
        gpus = max(min(BOX + needs.gpus, room - memory), BOX + 1)
        spare = body - downloads - servers_want - memory - gpus
    chart = min(MAX_CHART, spare - CHART_HEAD)
    if chart < MIN_CHART:
        chart = 0
    else:
        memory += CHART_HEAD + chart
    if needs.wide:
        system = max(memory, gpus)
        return Plan(memory=system, gpus=system, system=system, chart=chart)
    return Plan(memory=memory, gpus=gpus, system=memory + gpus, chart=chart)
