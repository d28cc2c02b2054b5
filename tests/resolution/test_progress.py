"""Progress of a long resolve (issue #18 item 6): counts per stage, rate, share done and ETA, handed
to a callback (the terminal prints, the Prefect flow updates an artifact), never a record's value."""
from __future__ import annotations

import pandas as pd

from dealersync.resolution import progress, service, synth
from dealersync.resolution.resolve import resolve_frame

from tests.dealersync.pii_scan import find_pii


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_events_at_stage_ends_and_at_most_every_interval_with_an_eta():
    clock, seen = Clock(), []
    p = progress.Progress(seen.append, every=2.0, stages=("normalise", "score"), clock=clock)
    p.start("normalise", 1000)
    for _ in range(10):           # 100 records a second
        clock.t += 1
        p.advance("normalise", 100)
    p.finish("normalise")
    p.start("score")
    p.set_total("score", 5000)
    clock.t += 5
    p.finish("score", 5000)
    kinds = [(e.stage, e.done, e.final) for e in seen]
    assert kinds == [("normalise", 0, False), ("normalise", 200, False), ("normalise", 400, False),
                     ("normalise", 600, False), ("normalise", 800, False), ("normalise", 1000, False),
                     ("normalise", 1000, True), ("score", 0, False), ("score", 0, False), ("score", 5000, True)]
    mid = seen[2]                  # 400 of 1000 after 4 s: 40 % of a stage weighing 3/7 of the run
    assert mid.rate == 100.0 and abs(mid.fraction - 0.4 * 3 / 7) < 1e-9
    assert abs(mid.eta - 4 * (1 - mid.fraction) / mid.fraction) < 1e-9
    assert [e.fraction for e in seen] == sorted(e.fraction for e in seen) and seen[-1].fraction == 1.0
    assert seen[0].eta is None     # too early to say
    assert seen[2].line() == "normalise: 400 / 1,000 records normalised (40%), 100/s; run 17% at 4 s, ETA 19 s"
    assert seen[-1].line_zh().startswith("评分完成：5,000 / 5,000 对候选记录；整体 100%")


def test_resolve_frame_reports_each_stage_with_counts_and_no_personal_data():
    df = synth.generate(3000, seed=3).drop(columns=["truth", "household", "kind"])
    seen = []
    res = resolve_frame(df, progress=progress.Progress(seen.append, every=0, stages=("normalise", "score", "cluster")),
                        partition_rows=1000)
    finals = [e for e in seen if e.final]
    assert [e.stage for e in finals] == ["normalise", "score", "cluster"]
    assert finals[0].done == finals[0].total == len(df)
    assert finals[1].done == finals[1].total == len(res.scored.pairs)
    assert finals[2].done == int((res.scored.pairs["decision"] == "MERGE").sum())
    assert finals[-1].fraction == 1.0
    norm = [e.done for e in seen if e.stage == "normalise"]
    assert norm == sorted(norm) and norm[-1] == len(df) and len(norm) >= 3
    text = "\n".join(e.line() + e.line_zh() for e in seen)
    assert not find_pii(text, planted=tuple(df["mobile"].dropna().head(50)))
    # partitions change nothing
    whole = resolve_frame(df)
    assert (pd.Series(res.labels) == pd.Series(whole.labels)).all()


def test_store_resolve_reports_normalise_score_cluster_write(engine, tmp_path):
    from dealersync.services.ingest import ingest_file
    from dealersync.services.sample import generate
    files = generate(tmp_path / "drop", rows=40, seed=3)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(engine, files[feed])
    seen = []
    with engine.begin() as c:
        st = service.resolve(c, progress=progress.Progress(seen.append, every=0), partition_rows=50)
    finals = [e for e in seen if e.final]
    assert [e.stage for e in finals] == ["normalise", "score", "cluster", "write"]
    assert finals[0].done == st.scored_records and finals[1].done == st.candidate_pairs
    assert finals[3].done == st.masters and finals[3].fraction == 1.0
    assert len([e for e in seen if e.stage == "normalise"]) >= 5     # a start, 4 partitions, the end
    with engine.begin() as c:    # nothing new: one event, the run done
        seen.clear()
        service.resolve(c, progress=seen.append)
    assert len(seen) == 1 and seen[0].final and seen[0].fraction == 1.0
