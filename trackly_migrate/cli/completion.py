"""Shell completion: ``--install-completion``, ``--show-completion`` and the shells' requests.

Typer's own completion options default to ``None``, which Typer converts through Pydantic
on every command line, ``--help`` included (issue 13; see ``command_classes``). So the app
is built with ``add_completion=False`` and these two flags, which default to ``False``, take
their place: same names, same help, and Typer's own callbacks do the work (detect the shell,
print or install its script), only when given.

The answers to a shell's requests are Typer's protocols (its scripts speak them), except
that a help text is written as it is: Typer would import Rich (about 55 ms a Tab in zsh,
fish or PowerShell) to strip Rich markup from it, and this app's help has none (its
``rich_markup_mode`` is ``None``: a ``[...]`` in a help text is text).
"""

from __future__ import annotations

import re
from typing import Annotated

import typer
import typer.completion
from typer._click.shell_completion import CompletionItem, add_completion_class
from typer._completion_classes import (
    BashComplete,
    FishComplete,
    PowerShellComplete,
    ZshComplete,
)

InstallCompletionOpt = Annotated[
    bool,
    typer.Option(
        "--install-completion",
        callback=typer.completion.install_callback,
        expose_value=False,
        help="Install completion for the current shell.",
    ),
]
ShowCompletionOpt = Annotated[
    bool,
    typer.Option(
        "--show-completion",
        callback=typer.completion.show_callback,
        expose_value=False,
        help="Show completion for the current shell, to copy it or customize the installation.",
    ),
]


def _zsh_escape(text: str) -> str:
    return (
        text.replace('"', '""')
        .replace("'", "''")
        .replace("$", "\\$")
        .replace("`", "\\`")
        .replace(":", r"\\:")
    )


class PlainZshComplete(ZshComplete):
    def format_completion(self, item: CompletionItem) -> str:
        if not item.help:
            return super().format_completion(item)
        return f'"{_zsh_escape(item.value)}":"{_zsh_escape(item.help)}"'


class PlainFishComplete(FishComplete):
    def format_completion(self, item: CompletionItem) -> str:
        if not item.help:
            return super().format_completion(item)
        one_line = re.sub(r"\s", " ", item.help)
        return f"{item.value}\t{one_line}"


class PlainPowerShellComplete(PowerShellComplete):
    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.value}:::{item.help or ' '}"


def register_shells() -> None:
    """The shells completion answers for; Typer registers its own only when it adds its
    completion options."""
    add_completion_class(BashComplete, "bash")
    add_completion_class(PlainZshComplete, "zsh")
    add_completion_class(PlainFishComplete, "fish")
    add_completion_class(PlainPowerShellComplete, "powershell")
    add_completion_class(PlainPowerShellComplete, "pwsh")
