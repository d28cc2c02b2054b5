"""The stages of a multi-stage job (``dealersync run``): each runs on its own, never raises, and says
how it ended in one line; what succeeded is kept when another stage fails. Prefect-free: the main
job's flow (``flows/main.py``) runs its stage flows through ``run_stage``, and ``cli/front.py`` prints
the summary."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from dealersync.errors import ConfigurationError, ItemsFailed


@dataclass
class Stage:
    name: str
    status: str = "not run"     # ok | needs attention | failed | skipped
    detail: str = ""
    seconds: float = 0.0
    result: object = None
    problems: list = field(default_factory=list)


def run_stage(stages: list[Stage], name: str, fn, *args, **kw) -> Stage:
    """Run one stage; never raises. ``ok``: it returned; ``needs attention``: it raised ``ItemsFailed``
    (a flow that ended Failed with items for a person; its result kept); ``failed``: any other error
    (one line, no traceback)."""
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
