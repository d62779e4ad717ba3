"""A running TUI picks up an edited catalog file; a broken edit keeps the models loaded
before and says what is wrong, one line per problem (Pilot)."""

from __future__ import annotations

from conftest import make_app, tiny_entry, write_user_catalog
from test_tui_servers import wait_until

from sparktop.config import Config, ServerSettings
from sparktop.ui.screens.catalog import CatalogScreen


def rows(app) -> set[str]:
    table = app.screen.query_one("#catalog-table")
    return {str(table.get_row_at(index)[0]) for index in range(table.row_count)}


def messages(app) -> str:
    return "\n".join(str(notification.message) for notification in app._notifications)


async def test_an_edited_catalog_file_is_loaded_again(isolated_dirs, tmp_path):
    config = isolated_dirs["config"]
    model = tmp_path / "tiny.gguf"
    path = write_user_catalog(config, [tiny_entry("first", model, 18080)])
    # the catalog is looked at on the servers loop's cadence: 1 s here, not the 10 s idle one
    settings = Config(servers=ServerSettings(interval=1.0, idle_interval=1.0))
    app = make_app("nogpu", interval=0.2, watch_servers=True, config=settings)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.servers_ready.wait()
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
        assert "first" in rows(app) and "second" not in rows(app)

        # a new entry appears without a restart
        entries = [tiny_entry("first", model, 18080), tiny_entry("second", model, 18081)]
        write_user_catalog(config, entries)
        await wait_until(pilot, lambda: "second" in rows(app), timeout=20)
        # the table may show the new catalog (read from Control) a frame before the notice
        await wait_until(pilot, lambda: "added second" in messages(app), timeout=20)
        assert "catalog reloaded" in messages(app)
        assert app.control.catalog.get("second") is not None

        # a broken edit: the models from before stay, each problem is shown on its own line
        path.write_text(
            "models:\n"
            "  - name: first\n"
            "    engine: llama.cpp\n"
            "    serve: {port: 99999999}\n"
            "  - name: third\n"
            "    engine: lama.cpp\n"
        )
        errors = app.screen.query_one("#catalog-errors")
        await wait_until(pilot, lambda: "edit not used" in str(errors.render()), timeout=20)
        shown = str(errors.render()).splitlines()
        assert any(f"{path.name}:4" in line and "port" in line for line in shown)
        assert any(f"{path.name}:6" in line and "llama.cpp" in line for line in shown)
        assert {"first", "second"} <= rows(app) and "third" not in rows(app)
        assert app.control.catalog.get("second") is not None
        await wait_until(pilot, lambda: "catalog edit not used" in messages(app), timeout=20)

        # fixed again: used again, the problems go
        write_user_catalog(config, [tiny_entry("first", model, 18080)])
        await wait_until(pilot, lambda: "second" not in rows(app), timeout=20)
        assert "edit not used" not in str(errors.render())
