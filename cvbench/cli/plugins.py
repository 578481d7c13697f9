"""``cvbench plugins``: every registered name with its kind, source package and summary."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins_command() -> None:
        """List the registered plugins (built-ins and installed third-party packages)."""
        from ..contract.registry import KINDS, get_registry  # discovery imports the plugins, and they torch

        registry = get_registry()
        table = Table(title="cvbench plugins")
        for column in ("kind", "name", "source", "summary"):
            table.add_column(column)
        for kind in KINDS:
            for name in sorted(registry.plugins[kind]):
                plugin = registry.plugins[kind][name]
                table.add_row(*(Text(str(cell)) for cell in (kind, name, plugin.source, plugin.summary)))  # no markup
        console = Console()
        console.print(table)
        for failure in registry.failures:
            console.print(f"[bold red]failed to load[/] {escape(failure.entry_point)} (from {escape(failure.source)}): "
                          f"{escape(failure.error)}", highlight=False)  # a plugin's error may hold "[...]"
