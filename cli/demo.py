"""``dealersync demo``: the product working end to end on sample data, and the only command that ever
writes sample data or starts a sandbox (issue 15, issue 19 item 1).

Everything lives in its own folder (``<data_dir>/demo`` by default: its SQLite store, drop folder,
sandbox state and reports), never in the configured store, and the sandbox CRM and OEM portal run in
this process on free loopback ports. The sample is a workshop's recent weeks: warranty claims on
repair orders closed inside the claim window, which the sandbox portal reads from the same
``claim_window_days`` setting as our own check; the call centre's survey answers are pulled in the
same run (the main job pulls the CRM again after pushing). Notifications are off unless ``--notify``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from datetime import date
from pathlib import Path

from dealersync.config import get_settings
from dealersync.processes import exit_on_sigterm

from dealersync.services.context import Clock, build_context, upgrade_store

from .front import Stage, print_summary
from .preflight import preflight
from .show import EXIT_ERROR, EXIT_OK, _prefect_env

MARKER = ".dealersync-demo"
DEMO_DEALER = "DEMO01"
DEMO_CLIENT, DEMO_SECRET, DEMO_TOKEN = "demo-client", "demo-secret", "demo-token"


@contextlib.contextmanager
def _env(values: dict[str, str]):
    """The demo's settings, as DEALERSYNC_* variables (they win over dealersync.toml), restored after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prepare_folder(folder: Path, keep: bool) -> bool:
    """A fresh demo folder (an earlier demo's is replaced unless ``keep``); True when it is new.
    Refuses a folder that holds anything but an earlier demo."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise SystemExit(f"error: {folder} is not empty and is not a demo folder; give --dir")
        if keep:
            return False
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by `dealersync demo`; removed by the next demo\n", encoding="utf-8")
    return True


def cmd_demo(args, settings) -> int:
    from dealersync.sandbox import crm as sandbox_crm
    from dealersync.sandbox import portal as sandbox_portal
    from dealersync.sandbox.runner import serving
    from dealersync.services.sample import generate
    exit_on_sigterm()
    _prefect_env()
    folder = Path(args.dir) if args.dir else settings.data_dir / "demo"
    fresh = prepare_folder(folder, args.keep)
    window = settings.claim_window_days
    today = Clock().today()
    if fresh:
        generate(folder / "drop", rows=args.rows, seed=args.seed, profile="dms_a", dealer=DEMO_DEALER,
                 business_date=today, recent_claims_within=max(1, window - 5))
        print(f"demo: sample DMS exports of dealer {DEMO_DEALER} for {today} written to {folder / 'drop'}",
              file=sys.stderr)
    crm_app = sandbox_crm.create_app(folder / "sandbox-crm.db", token=DEMO_TOKEN)
    portal_app = sandbox_portal.create_app(
        folder / "sandbox-portal.db", clients={DEMO_CLIENT: DEMO_SECRET},
        clock=sandbox_portal.Clock(review_after=1.0, decide_after=2.0, settle_after=30.0, claim_window_days=window))
    with serving(crm_app) as crm_url, serving(portal_app) as portal_url:
        env = {"DEALERSYNC_DATA_DIR": str(folder), "DEALERSYNC_DATABASE_URL": f"sqlite:///{(folder / 'dealersync.db').resolve()}",
               "DEALERSYNC_DROP_DIRS": str(folder / "drop"), "DEALERSYNC_DEALER_CODE": DEMO_DEALER,
               "DEALERSYNC_OEM_URL": portal_url + "/api/v1", "DEALERSYNC_OEM_CLIENT_ID": DEMO_CLIENT,
               "DEALERSYNC_OEM_CLIENT_SECRET": DEMO_SECRET, "DEALERSYNC_OEM_DEALER_NUMBER": DEMO_DEALER,
               "DEALERSYNC_CRM_URL": crm_url + "/crm/v1", "DEALERSYNC_CRM_TOKEN": DEMO_TOKEN,
               "DEALERSYNC_SFTP_HOST": "", "DEALERSYNC_SFTP_DMS_FOLDER": "",
               "DEALERSYNC_STABLE_SECONDS": "0"}   # the demo's files are written whole before the run
        if not args.notify:
            env["DEALERSYNC_NOTIFY_URLS"] = "[]"
        with _env(env):
            demo = get_settings()
            bad = [c for c in preflight(demo, store_must_exist=False) if not c.ok]
            if bad:   # the sandboxes are ours: a failure here is a bug worth a clear line
                for c in bad:
                    print(f"error: {c.what}: {c.detail}", file=sys.stderr)
                return EXIT_ERROR
            stages = run_demo(demo)
            print_summary(demo, stages)
            reports = write_reports(demo, today)
            print_next_steps(demo, folder, reports, stages)
    return EXIT_OK if all(s.status != "failed" for s in stages) else EXIT_ERROR


def run_demo(settings) -> list[Stage]:
    """The main job's flow, as ``run`` runs it, with the portal's decisions read once more at the end."""
    from dealersync.flows.common import prefect_api
    from dealersync.flows.main import run_main_job
    upgrade_store(settings)
    with prefect_api():
        return run_main_job(poll_again=True)


def write_reports(settings, today: date) -> dict[str, Path]:
    """The information officer's lists for today: the follow-up list and this month's CSI report."""
    from dealersync.services import jobs
    from dealersync.services.followups import due_list, write_xlsx
    out_dir = settings.data_dir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    with build_context(settings, today=today) as ctx:
        with ctx.engine.begin() as conn:
            df = due_list(conn, today)
        path = out_dir / f"followups-{today}.xlsx"
        write_xlsx(df, path, today)
        written["follow-up list"] = path
        try:
            csi = jobs.csi_report(ctx, today.strftime("%Y-%m"))
            written["CSI report"] = Path(csi["file"])
        except Exception as e:  # noqa: BLE001 - the demo still shows the rest
            print(f"demo: CSI report not written: {type(e).__name__}: {e}", file=sys.stderr)
    return written


def print_next_steps(settings, folder: Path, reports: dict[str, Path], stages: list[Stage]) -> None:
    r = {s.name: s.result for s in stages if s.result is not None}
    env = f"DEALERSYNC_DATA_DIR={folder} DEALERSYNC_DATABASE_URL=sqlite:///{(folder / 'dealersync.db').resolve()}"
    claims = r.get("warranty claims") or {}
    surveyed = r.get("survey results") or {}
    print("\nWhat happened: sample DMS exports (with the dirt real exports have) were validated and loaded, every "
          "rejected row kept with its reason; customers were matched into master records; changed customers and "
          f"today's follow-up tasks went to the sandbox CRM; {claims.get('accepted', 0)} warranty claim(s) were "
          f"accepted by the sandbox OEM portal and {surveyed.get('sent', 0)} survey result(s) sent.")
    print("\nOpen next:")
    for what, p in reports.items():
        print(f"  {what}: {p}")
    ds, prefect = _command("dealersync"), _command("prefect")
    print(f"  customers the matcher was unsure of:  {env} {ds} master review")
    print(f"  claims and their OEM status:          {env} {ds} claims list")
    print(f"  rejected rows and their reasons:      {env} {ds} quarantine list")
    print(f"  the flow runs in the Prefect UI:      {prefect} server start   (then http://127.0.0.1:4200/runs)")
    print("\nThis was the demo, on sample data in its own folder. For the real thing: `dealersync config show`, "
          "`dealersync check`, then `dealersync run`.")


def _command(name: str) -> str:
    """How to type ``name`` from here: the bare name when the shell finds this install's, else its path
    (the README's first command installs into ``.venv`` without activating it)."""
    mine = Path(sys.argv[0]).resolve().parent / name
    found = shutil.which(name)
    if found and Path(found).resolve() == mine.resolve() or not mine.exists():
        return name
    try:
        return os.path.relpath(mine)
    except ValueError:
        return str(mine)


def add_parser(sub) -> None:
    x = sub.add_parser("demo", help="the product end to end on sample data, with a sandbox CRM and OEM portal, "
                                    "in its own folder (<data_dir>/demo); the only command that invents data")
    x.add_argument("--dir", help="demo folder (default <data_dir>/demo; an earlier demo there is replaced)")
    x.add_argument("--keep", action="store_true", help="run again on the earlier demo's data (shows a re-run)")
    x.add_argument("--rows", type=int, default=300, help="people in the sample")
    x.add_argument("--seed", type=int, default=7)
    x.add_argument("--notify", action="store_true", help="send notifications to notify_urls (off by default)")
    x.set_defaults(fn=cmd_demo)
