"""sparktop: the operator's console for a box that serves local LLMs.

The core (probes, snapshot, config) never imports Textual, so scripts can use it directly::

    from sparktop.probes.system import SystemProbe
    print(SystemProbe().collect().memory)
"""

__version__ = "0.1.0"
