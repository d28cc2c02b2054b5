"""``dealersync`` command line.

The parser is assembled here from one module per command group, with the exit codes. Each group registers its sub-commands (``register(sub)``); each command is ``fn(args, settings)``
and runs its job through the run context (``services.context.build_context``), as the flows do.

Exit codes: 0 success; 2 bad input (a one-line message naming file, row and column);
1 unexpected error.
"""
from __future__ import annotations

import argparse
import logging
import sys

from dealersync.errors import BadSourceData, ConfigurationError, DealersyncError
from dealersync.privacy import render_exception

from . import crm, db, demo, front, ingest, master, oem, sandbox, serve, sftp, worklists
from .show import EXIT_BAD_INPUT, EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dealersync", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    quarantine = ingest.register(sub)   # ingest, quarantine, sample
    db.register(sub)                    # db upgrade
    sftp.register(sub)
    master.register(sub)                # resolve, master, resolve-file
    crm.register(sub)                   # crm, followups
    sandbox.register(sub)
    report = oem.register(sub)          # sanbao, oem, claims, surveys, report csi
    worklists.register(sub, quarantine, report)   # quarantine replay, value-issues, report <name>
    db.register_ops(sub)                # status, purge
    serve.register(sub)                 # backfill, serve
    front.add_parsers(sub)              # run, check, config
    demo.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from dealersync.config import get_settings
        from dealersync.privacy import install_log_filter
        settings = get_settings()
        install_log_filter(settings)
        return args.fn(args, settings)
    except (BadSourceData, ConfigurationError) as e:
        print(f"error: {render_exception(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DealersyncError as e:
        print(f"error: {render_exception(e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001
        if args.debug:   # the traceback, masked like every other text that leaves (never Python's raw one)
            print(render_exception(e, with_traceback=True), file=sys.stderr, end="")
            return EXIT_ERROR
        print(f"unexpected error: {render_exception(e)} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
