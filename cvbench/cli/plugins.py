"""``cvbench plugins``: every registered name with its kind, source package and summary."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ..registry import KINDS, get_registry


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins_command() -> None:
        """List the registered plugins (built-ins and installed third-party packages)."""
        registry = get_registry()
        table = Table(title="cvbench plugins")
        for column in ("kind", "name", "source", "summary"):
            table.add_column(column)
        for kind in KINDS:
            for name in sorted(registry.plugins[kind]):
                plugin = registry.plugins[kind][name]
                table.add_row(kind, name, plugin.source, plugin.summary)
        console = Console()
        console.print(table)
        for failure in registry.failures:
            console.print(f"[bold red]failed to load[/] {failure.entry_point} (from {failure.source}): {failure.error}",
                          highlight=False)
