"""What the command modules share: the argument shapes written once (``--json``, ``--date``, the
audit's ``--actor``/``--reason``, a command group's sub-commands) and the run context of a command."""
from __future__ import annotations

import argparse
import contextlib
import os

from dealersync.services.context import build_context, upgrade_store


def group(sub, name: str, help: str):
    """A command group (``claims``, ``master``...): its parser's sub-commands, one required."""
    return sub.add_parser(name, help=help).add_subparsers(dest="sub", required=True)


def command(sub, name: str, fn, help: str | None = None, *, json: bool | str = False,
            date: str | None = None) -> argparse.ArgumentParser:
    """One command running ``fn(args, settings)``; ``json``: a ``--json`` flag (a string: its help);
    ``date``: a ``--date`` option with this help (the day the command runs as; default today)."""
    x = sub.add_parser(name, help=help)
    if date is not None:
        x.add_argument("--date", help=date or None)
    if json:
        x.add_argument("--json", action="store_true", **({"help": json} if isinstance(json, str) else {}))
    x.set_defaults(fn=fn)
    return x


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def add_audit(p: argparse.ArgumentParser, reason: str | None = None) -> None:
    """``--reason`` and ``--actor`` (default: the login name), kept in the master audit."""
    p.add_argument("--reason", **({"help": reason} if reason else {}))
    p.add_argument("--actor", default=os.environ.get("USER", "manual"))


@contextlib.contextmanager
def store_context(args, settings, migrate: bool = True):
    """The run context of one command (``services.context.build_context``; ``--date`` fixes its clock).
    A one-shot command is a process start-up: the store is migrated first (``migrate``), once, as
    ``run`` and ``serve`` do; tasks never migrate."""
    if migrate:
        upgrade_store(settings)
    with build_context(settings, today=getattr(args, "date", None)) as ctx:
        yield ctx


def client_context(args, settings):
    """The run context of a command that talks to a service only (no store touched, no migration)."""
    return store_context(args, settings, migrate=False)
