"""The Models screen (`m`) stays true while it is open: ON DISK after files arrive, RUN after
a server is stopped from a shell (a real llama-server)."""

from __future__ import annotations

import asyncio
import shutil

from conftest import free_port, make_app, run_cli, tiny_entry, write_user_catalog
from test_tui_servers import wait_until

from sparktop.ui.screens.catalog import CatalogScreen


def cell(app, name: str, column: str) -> str:
    return str(app.screen.query_one("#catalog-table").get_cell(name, column))


async def test_on_disk_follows_files_arriving_while_open(isolated_dirs, tiny_gguf, tmp_path):
    target = tmp_path / "arrives"
    entry = tiny_entry("arrives", target / tiny_gguf.name, 1)
    write_user_catalog(isolated_dirs["config"], [entry])
    app = make_app("nogpu")
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
        await wait_until(pilot, lambda: cell(app, "arrives", "ON DISK") == "not on disk")
        target.mkdir()
        shutil.copy(tiny_gguf, target / tiny_gguf.name)  # a download finished meanwhile
        await wait_until(pilot, lambda: cell(app, "arrives", "ON DISK").startswith("complete"),
                         timeout=20)  # fmt: skip
        assert "not on disk" not in cell(app, "arrives", "FIT")


async def test_run_follows_a_server_stopped_from_a_shell(
    llama_server, tiny_gguf, isolated_dirs, no_orphans
):
    write_user_catalog(isolated_dirs["config"], [tiny_entry("live", tiny_gguf, free_port())])
    served = run_cli("serve", "live", timeout=120)
    assert served.returncode == 0, served.stderr
    try:
        app = make_app("nogpu", interval=1.0, watch_servers=True)
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_until(pilot, lambda: any(s.catalog_name == "live" for s in app.servers))
            await pilot.press("m")
            await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
            await wait_until(pilot, lambda: cell(app, "live", "RUN") == "●")
            stopped = await asyncio.to_thread(run_cli, "stop", "live", timeout=60)
            assert stopped.returncode == 0, stopped.stderr
            await wait_until(pilot, lambda: cell(app, "live", "RUN") == "", timeout=30)
    finally:
        run_cli("stop", "live", timeout=60)
