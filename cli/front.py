"""The front door: ``run`` (the main job), ``check``, ``config show`` and ``demo``.

``run`` works on what is configured and nothing else: no sample data, no sandbox. It first makes
every check of ``dealersync check`` and refuses to start when one fails (exit 2 for a setting, 3 for
a service; store unchanged). Then each stage runs as its Prefect flow, fails on its own (bounded
retries: ``retry_budget_seconds``) and the summary says what succeeded and what did not. A flow
whose items need a person ends ``Failed`` in Prefect and notifies (``notify_urls``); ``run`` then
exits 1.
"""
from __future__ import annotations

import sys

from dealersync.config import ENV_PREFIX, Settings, _toml_path, env_keys, toml_keys
from dealersync.connectors.notify import shown_url
from dealersync.processes import exit_on_sigterm
from dealersync.services.context import upgrade_store
from dealersync.services.stages import Stage, run_stage  # noqa: F401 - the stage of a run, as printed here

from .preflight import exit_code, preflight
from .show import EXIT_ERROR, EXIT_OK, SUMMARY_COLS, _prefect_env, _print_table, _safe_url


def print_summary(settings, stages: list[Stage]) -> None:
    r = {s.name: s.result for s in stages if s.result is not None}
    print(f"\ndealersync: store {_safe_url(settings.effective_database_url)}")
    _print_table([{"stage": s.name, "result": s.status, "seconds": s.seconds, "detail": s.detail} for s in stages],
                 ["stage", "result", "seconds", "detail"])
    if "SFTP drops" in r:
        print(f"\nSFTP {settings.sftp_host}: {len(r['SFTP drops'])} drop(s) pulled and ingested")
    if "DMS ingest" in r:
        print()
        if r["DMS ingest"]:
            _print_table(r["DMS ingest"], SUMMARY_COLS)
        else:
            print("nothing new to ingest (every file in the drop folders is already in the ledger)")
    if "customer resolution" in r:
        st = r["customer resolution"]
        print(f"\nmaster customers: {st['masters']:,} from {st['records']:,} source records ({st['created']} created, "
              f"{st['merged']} merged, {st['review_links']} pairs for review in `dealersync master review`)")
    pulls = [r[k] for k in ("CRM pull", "CRM pull (call-centre answers)") if k in r]
    if pulls or "CRM push" in r:
        line = f"CRM {settings.crm_url}: "
        if pulls:
            line += "pulled " + ", ".join(f"{sum(p.get(k, {}).get('items', 0) for p in pulls)} {k}" for k in pulls[0])
        if "CRM push" in r:
            p = r["CRM push"]
            c, t = p["contacts"], p["tasks"]
            line += (f"; contacts sent {c['sent']} ({c['created']} new, {c['updated']} updated, {c['errors']} refused), "
                     f"deleted {c['deleted']}; tasks planned {p['tasks_planned']['created']}, sent {t['sent']}")
        print(line)
    if "warranty claims" in r:
        c = r["warranty claims"]
        print(f"OEM portal {settings.oem_url}: claims {c['new_jobs']} new, {c['queued']} queued, {c['validation_failed']} "
              f"failed validation (`dealersync claims list --status VALIDATION_FAILED`), {c['accepted']} accepted, "
              f"{c['rejected']} refused, {c['replayed'] + c['duplicates_reconciled']} reconciled"
              + (f"; status changes {r['claim status']['changes']}" if "claim status" in r else "")
              + (f"; surveys sent {r['survey results']['sent']}, skipped {r['survey results']['skipped']} (no consent "
                 f"to share)" if "survey results" in r else ""))
    bad = [s for s in stages if s.status != "ok"]
    if bad:
        print("\nnot all went well: " + "; ".join(f"{s.name}: {s.status}" for s in bad))


def cmd_run(args, settings) -> int:
    """The main job on the configured sources and services (see the module docstring)."""
    exit_on_sigterm()
    checks = preflight(settings, store_must_exist=False)
    failed = [c for c in checks if not c.ok]
    if failed:
        for c in failed:
            print(f"error: {c.what}: {c.detail}", file=sys.stderr)
        print("nothing was run (`dealersync check` shows every check; `dealersync demo` runs on sample data)",
              file=sys.stderr)
        return exit_code(checks)
    return run_job(settings)


def run_job(settings) -> int:
    """Migrate the store, then the main job's flow (``flows/main.py``: one run with a subflow run per
    stage) on ``PREFECT_API_URL``'s server or a local one that ends with this process."""
    from dealersync.flows.common import prefect_api
    from dealersync.flows.main import run_main_job
    _prefect_env()
    upgrade_store(settings)
    with prefect_api():
        stages = run_main_job()
    print_summary(settings, stages)
    return EXIT_OK if all(s.status == "ok" for s in stages) else EXIT_ERROR


def cmd_check(args, settings) -> int:
    """Every preflight check, one line each saying what was checked; exit 0 when all pass, 2 when a
    setting is missing or wrong, 3 when a service is unreachable or refuses our credentials."""
    checks = preflight(settings, store_must_exist=True)
    for c in checks:
        print(c.line())
    code = exit_code(checks)
    print(f"\n{sum(c.ok for c in checks)} of {len(checks)} checks passed" + ("" if code == EXIT_OK else f" (exit {code})"))
    return code


SECRET_FIELDS = {"oem_client_secret", "crm_token", "sftp_password"}


def _shown(name: str, value) -> str:
    if value is None:
        return "(unset)"
    if name in SECRET_FIELDS:
        return "******" if value.get_secret_value() else "(empty)"
    if name == "database_url":
        return _safe_url(value)
    if name == "notify_urls":
        return ", ".join(shown_url(u) for u in value) or "[]"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "[]"
    return str(value)


def config_rows(settings: Settings) -> list[dict]:
    """Each setting's effective value (secrets masked) and where it came from: env, file or default."""
    env, toml = env_keys(), toml_keys()
    rows = []
    for name, f in Settings.model_fields.items():
        source = (f"env {ENV_PREFIX}{name.upper()}" if name in env else f"file {_toml_path()}" if name in toml
                  else "default")
        rows.append({"setting": name, "value": _shown(name, getattr(settings, name)), "from": source})
    rows.append({"setting": "(database in use)", "value": _safe_url(settings.effective_database_url),
                 "from": "database_url or <data_dir>/dealersync.db"})
    return rows


def cmd_config_show(args, settings) -> int:
    rows = config_rows(settings)
    if args.json:
        import json
        print(json.dumps(rows, ensure_ascii=False))
    else:
        print(f"settings file: {_toml_path()}{'' if _toml_path().exists() else ' (not present)'}")
        _print_table(rows, ["setting", "value", "from"])
    return EXIT_OK


def add_parsers(sub) -> None:
    r = sub.add_parser("run", help="the main job on the configured sources: checks, then ingest, CRM pull, resolve, "
                                   "CRM push, claims, claim status, surveys; prints what succeeded and what did not")
    r.set_defaults(fn=cmd_run)
    c = sub.add_parser("check", help="store reachable and migrated, drop folders readable, CRM, OEM portal and SFTP "
                                     "reachable and authenticated; one line per check; exit 0/2/3")
    c.set_defaults(fn=cmd_check)
    cf = sub.add_parser("config", help="the settings in effect")
    cfs = cf.add_subparsers(dest="sub", required=True)
    x = cfs.add_parser("show", help="each setting's value and where it came from (env, file, default); secrets masked")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_config_show)
