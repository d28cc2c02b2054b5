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
import time
from dataclasses import dataclass, field

from dealersync.config import ENV_PREFIX, Settings, _toml_path, env_keys, toml_keys
from dealersync.connectors.notify import shown_url
from dealersync.errors import ConfigurationError, ItemsFailed
from dealersync.processes import exit_on_sigterm

from .preflight import exit_code, preflight
from .show import EXIT_ERROR, EXIT_OK, SUMMARY_COLS, _prefect_env, _print_table, _safe_url


@dataclass
class Stage:
    name: str
    status: str = "not run"     # ok | needs attention | failed | skipped
    detail: str = ""
    seconds: float = 0.0
    result: object = None
    problems: list = field(default_factory=list)


def run_stage(stages: list[Stage], name: str, fn, *args, **kw) -> Stage:
    """Run one flow; never raises. ``ok``: Completed; ``needs attention``: the flow ended Failed with
    ``ItemsFailed`` (its result kept); ``failed``: any other error (one line, no traceback)."""
    st = Stage(name)
    stages.append(st)
    print(f"[{len(stages)}] {name} ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        st.result = fn(*args, **kw)
        st.status = "ok"
    except ItemsFailed as e:
        st.status, st.result, st.detail = "needs attention", e.result, str(e).split(": ", 1)[-1]
    except ConfigurationError as e:
        st.status, st.detail = "failed", f"configuration: {e}"
    except Exception as e:  # noqa: BLE001 - one stage's outage never hides the others' results
        st.status, st.detail = "failed", f"{type(e).__name__}: {str(e).splitlines()[0][:240] if str(e) else ''}"
    st.seconds = round(time.monotonic() - t0, 1)
    print(f"[{len(stages)}] {name}: {st.status} ({st.seconds} s){' - ' + st.detail if st.detail else ''}",
          file=sys.stderr, flush=True)
    return st


def run_pipeline(settings, stages: list[Stage]) -> dict:
    """The main job's stages in order, each its own flow: SFTP drops (when configured), DMS ingest,
    CRM pull, resolution, CRM push, claims, claim status, CRM pull again (the call centre's answers to
    today's pushes), survey results. Returns the results of the stages that produced one, by name."""
    from dealersync.flows.crm import pull_crm, push_crm
    from dealersync.flows.ingest import ingest_dms_exports
    from dealersync.flows.oem import poll_claim_status, push_survey_results, push_warranty_claims
    from dealersync.flows.resolve import resolve_customers
    from dealersync.flows.sftp import pull_sftp_drops
    if settings.sftp_host:
        run_stage(stages, "SFTP drops", pull_sftp_drops)
    run_stage(stages, "DMS ingest", ingest_dms_exports, folders=[str(p) for p in settings.effective_drop_dirs])
    run_stage(stages, "CRM pull", pull_crm)
    run_stage(stages, "customer resolution", resolve_customers)
    run_stage(stages, "CRM push", push_crm)
    run_stage(stages, "warranty claims", push_warranty_claims)
    run_stage(stages, "claim status", poll_claim_status)
    run_stage(stages, "CRM pull (call-centre answers)", pull_crm)
    run_stage(stages, "survey results", push_survey_results)
    return {s.name: s.result for s in stages if s.result is not None}


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
    from dealersync.flows.common import prefect_api
    from dealersync.store.db import make_engine, upgrade
    _prefect_env()
    upgrade(make_engine(settings.effective_database_url))
    stages: list[Stage] = []
    with prefect_api():
        run_pipeline(settings, stages)
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
