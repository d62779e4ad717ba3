"""sparktop: the operator's console for a box that serves local LLMs.

The house, arrows pointing down only (pyproject.toml's import contracts check it):

- `main`: the launcher behind the `sparktop` command; the one module that knows both faces.
- faces: `cli` (headless verbs, plain status) and `ui` (Textual); neither imports the other.
- `actions`: every verb a user can run, written once for both faces (with `collect`, the one
  producer of the Snapshot, and `control`, the wiring from config).
- `config`: config.yaml read into the plain values the layers below take.
- domain: `servers`, `catalog`, `downloads`, `bench`, `fleet`.
- `probes`: memory, GPUs and processes, read from procfs, sysfs and NVML.
- base: `snapshot`, `paths`, `atomic`, `units`, `yamlio`, `history`, `logs`, `state`, `memview`.

Everything but the faces is the core: it never imports Textual, so scripts can use it::

    from sparktop.probes.system import SystemProbe
    print(SystemProbe().collect().memory)
"""

__version__ = "0.1.0"
