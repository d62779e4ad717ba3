"""LiveTable (servers and downloads) shows what Textual's DataTable shows, rendering only the
cells whose text changed."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.renderables.styled import Styled
from textual.widgets import DataTable

from sparktop.ui.widgets.live_table import LiveTable

COLUMNS = ("name", "health", "memory")
ROWS = {f"s{i}": (f"bench-{i}", "ready", f"{i + 1}.0 GiB") for i in range(4)}


class Tables(App):
    def __init__(self, kind: type[DataTable]) -> None:
        super().__init__()
        self.kind = kind

    def compose(self) -> ComposeResult:
        yield self.kind(cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        for key, cells in ROWS.items():
            table.add_row(*cells, key=key)


def painted(table: DataTable) -> list[list[tuple[str, str]]]:
    lines = (table.render_line(y) for y in range(table.size.height))
    return [[(segment.text, str(segment.style)) for segment in line] for line in lines]


async def screens(kind: type[DataTable]) -> list[list[list[tuple[str, str]]]]:
    """What the table paints after each step of updates, cursor moves and removals."""
    app = Tables(kind)
    shown = []
    async with app.run_test(size=(60, 16)) as pilot:
        table = app.query_one(DataTable)
        await pilot.pause()
        shown.append(painted(table))
        table.update_cell("s1", "memory", "9.5 GiB")
        table.update_cell("s3", "health", "not responding")
        table.move_cursor(row=2)
        await pilot.pause()
        shown.append(painted(table))
        table.remove_row("s0")
        table.update_cell("s2", "memory", "3.0 GiB")  # the same text as before
        await pilot.pause()
        shown.append(painted(table))
        app.theme = "textual-light"
        await pilot.pause()
        shown.append(painted(table))
        table.show_cursor = False
        await pilot.pause()
        shown.append(painted(table))
    return shown


async def test_after_updates_cursor_moves_and_style_changes_it_paints_as_datatable_does():
    live, plain = await screens(LiveTable), await screens(DataTable)
    assert live == plain
    assert "9.5 GiB" in "".join(text for text, _ in live[1][2])
    assert live[3] != live[2]  # the theme change did repaint
    assert live[4] != live[3]  # and so did hiding the cursor


async def cells_rendered_for_one_change(kind: type[DataTable]) -> int:
    app = Tables(kind)
    async with app.run_test(size=(60, 16)) as pilot:
        table = app.query_one(DataTable)
        await pilot.pause()
        painted(table)
        console = app.console
        original = console.render_lines
        cells: list[object] = []

        def counting(renderable, *args, **kwargs):
            if isinstance(renderable, Styled):  # one per cell (its text renders inside)
                cells.append(renderable)
            return original(renderable, *args, **kwargs)

        console.render_lines = counting  # type: ignore[method-assign]
        table.update_cell("s1", "memory", "9.5 GiB")
        painted(table)
        return len(cells)


async def test_one_changed_cell_is_the_only_one_rendered_again():
    assert await cells_rendered_for_one_change(LiveTable) == 1
    assert await cells_rendered_for_one_change(DataTable) == 15  # Textual's: all of them
