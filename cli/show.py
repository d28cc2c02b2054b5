"""What every command shares: exit codes, the table printer, URLs without passwords.

Exit codes: 0 success; 1 a stage failed, or items need a person; 2 bad input or configuration (one
line naming the file, row and column, or the setting); 3 a service (store, CRM, portal, SFTP) did not
answer or refused our credentials before any work started.
"""
from __future__ import annotations

import os
import sys

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3

SUMMARY_COLS = ["file", "feed", "status", "rows_read", "rows_loaded", "rows_quarantined", "rows_superseded",
                "value_issues", "warnings", "seconds"]


def _prefect_env() -> None:
    """Defaults for running flows on one machine with no internet and no server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _width(s: str) -> int:  # CJK characters take two columns in a terminal
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _print_table(rows: list[dict], cols: list[str], out=None) -> None:
    out = out or sys.stdout
    if not rows:
        print("(nothing)", file=out)
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    w = [max(_width(c), *(_width(x[i]) for x in cells)) for i, c in enumerate(cols)]
    print("  ".join(c + " " * (w[i] - _width(c)) for i, c in enumerate(cols)), file=out)
    print("  ".join("-" * w[i] for i in range(len(cols))), file=out)
    for x in cells:
        print("  ".join(v + " " * (w[i] - _width(v)) for i, v in enumerate(x)), file=out)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL: show its scheme only
        return url.split("://", 1)[0] + "://…"
