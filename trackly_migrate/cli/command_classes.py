"""The Click classes of the app: Typer's, minus the Pydantic import where no value is needed.

Typer 0.29 converts every parameter's value through a Pydantic ``TypeAdapter``, and builds
the adapter (importing Pydantic, about 50 ms) before it looks at the value, even for a
``None`` it then returns unconverted (issue 13). Two places pay for it on every command
line that does nothing but answer:

- ``import-sends --help``: the group parses its own options first, and Typer's help option
  defaults to ``None``, not ``False`` (only a ``bool`` skips the conversion).
- a shell's completion request parses the words typed so far, and converting them built an
  adapter for every option of the command (30 ms more), though completing needs only which
  words were consumed and by what.

So the help option defaults to ``False`` here, and a resilient parse (Click parses so only
for completion) records each value as typed and runs no callback: a command's real run
converts its values exactly as before. ``tests/test_startup_imports.py`` pins both.
"""

from __future__ import annotations

import typer._click as click
from typer.core import TyperCommand, TyperGroup, TyperOption


def _help_option_off_by_default(option: TyperOption | None) -> TyperOption | None:
    if option is not None and option.default is None:
        option.default = False
    return option


def _record_words(command: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
    """Click's ``Command.parse_args`` for a completion request: the words are parsed and each
    value's source recorded (completion asks whether an option or argument was given), but
    no value is converted and no callback runs."""
    parser = command.make_parser(ctx)
    opts, rest, _ = parser.parse_args(args=args)
    for param in command.get_params(ctx):
        value, source = param.consume_value(ctx, opts)
        ctx.set_parameter_source(param.name, source)
        if param.expose_value:
            ctx.params[param.name] = value
    ctx.args = rest
    ctx._opt_prefixes.update(parser._opt_prefixes)
    return rest


class Command(TyperCommand):
    """A command; ``app.command(cls=Command)`` for every one."""

    def get_help_option(self, ctx: click.Context) -> TyperOption | None:
        return _help_option_off_by_default(super().get_help_option(ctx))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing:
            return _record_words(self, ctx, args)
        return super().parse_args(ctx, args)


class Group(TyperGroup):
    """The ``trackly-migrate`` group: ``typer.Typer(cls=Group)``."""

    def get_help_option(self, ctx: click.Context) -> TyperOption | None:
        return _help_option_off_by_default(super().get_help_option(ctx))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            return super().parse_args(ctx, args)
        rest = _record_words(self, ctx, args)
        if rest:  # as TyperGroup.parse_args: the first word left names the command
            ctx._protected_args, ctx.args = rest[:1], rest[1:]
        return ctx.args
