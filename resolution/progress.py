"""Progress of a long resolution: counts per stage (records normalised, pairs scored, clusters
formed, masters written) with the rate, the share done overall and an ETA, handed to a callback the
caller chooses (the terminal prints a line, the Prefect flow updates a progress artifact). The
resolution code stays free of both: it calls ``start`` / ``advance`` / ``finish`` on a ``Progress``.

An event is reported when a stage starts, when it ends, and in between at most once every
``every`` seconds. Events carry counts only, never a value of a record.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

# the stages of a run in order, with their share of a run's time (measured at 100k-1M records by
# bench/resolution.py and a store resolve; only used to turn "stage k of n, x % through it" into an ETA)
STAGES = {"normalise": ("records normalised", 0.30), "score": ("pairs scored", 0.40),
          "cluster": ("pairs clustered", 0.10), "write": ("masters written", 0.20)}
STAGES_ZH = {"normalise": ("标准化", "条记录"), "score": ("评分", "对候选记录"), "cluster": ("聚类", "对匹配"),
             "write": ("写入", "个客户主档")}


@dataclass(frozen=True)
class ProgressEvent:
    stage: str              # normalise, score, cluster, write
    what: str               # "records normalised", "pairs scored"...
    done: int
    total: int | None       # None: not known yet
    rate: float             # per second in this stage
    elapsed: float          # seconds since the run started
    fraction: float         # of the whole run, 0..1
    eta: float | None       # seconds left in the whole run (None: too early to say)
    final: bool             # the stage has ended

    @property
    def percent(self) -> float:
        return round(100.0 * self.fraction, 1)

    def line(self) -> str:
        """One line for a terminal: ``score: 1,234,567 / 2,000,000 pairs scored (62%), 410,000/s; run 48% done, ETA 31 s``."""
        count = f"{self.done:,}" + (f" / {self.total:,}" if self.total is not None else "")
        part = f" ({100.0 * self.done / self.total:.0f}%)" if self.total else ""
        eta = f", ETA {_secs(self.eta)}" if self.eta is not None and self.fraction < 1 else ""
        end = " done" if self.final else ""
        return (f"{self.stage}: {count} {self.what}{part}{end}, {self.rate:,.0f}/s; "
                f"run {self.percent:.0f}% at {_secs(self.elapsed)}{eta}")


    def line_zh(self) -> str:
        """The same for people reading Chinese (the Prefect progress artifact's description)."""
        verb, unit = STAGES_ZH.get(self.stage, (self.stage, ""))
        count = f"{self.done:,}" + (f" / {self.total:,}" if self.total is not None else "")
        eta = f"，预计还需 {_secs_zh(self.eta)}" if self.eta is not None and self.fraction < 1 else ""
        state = "完成" if self.final else "中"
        return f"{verb}{state}：{count} {unit}；整体 {self.percent:.0f}%，已用 {_secs_zh(self.elapsed)}{eta}"


def _secs(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _secs_zh(s: float) -> str:
    return f"{s:.0f} 秒" if s < 120 else f"{s / 60:.1f} 分钟"


class Progress:
    """Tracks the stages of one run and reports ``ProgressEvent`` to ``report`` (if any)."""

    def __init__(self, report: Callable[[ProgressEvent], None] | None = None, *, every: float = 2.0,
                 stages: tuple[str, ...] = tuple(STAGES), clock: Callable[[], float] = time.monotonic):
        self.report, self.every, self.clock = report, every, clock
        self.stages = [s for s in stages if s in STAGES]
        total = sum(STAGES[s][1] for s in self.stages) or 1.0
        self.weight = {s: STAGES[s][1] / total for s in self.stages}
        self.t0 = clock()
        self.last = float("-inf")
        self.stage: str | None = None
        self.done = 0
        self.total: int | None = None
        self.stage_t0 = self.t0
        self.ended: set[str] = set()
        self.events: list[ProgressEvent] = []

    def start(self, stage: str, total: int | None = None) -> None:
        if self.stage and self.stage != stage and self.stage not in self.ended:
            self.finish(self.stage)
        self.stage, self.done, self.total, self.stage_t0 = stage, 0, total, self.clock()
        self._emit(final=False, force=True)

    def set_total(self, stage: str, total: int) -> None:
        if self.stage != stage:
            self.start(stage, total)
        else:
            self.total = total
            self._emit(final=False, force=True)

    def advance(self, stage: str, n: int = 1) -> None:
        if self.stage != stage:
            self.start(stage)
        self.done += int(n)
        self._emit(final=False, force=False)

    def finish(self, stage: str, done: int | None = None) -> None:
        if self.stage != stage:
            self.start(stage, done)
        if done is not None:
            self.done = int(done)
        if self.total is None or self.total < self.done:
            self.total = self.done
        self.ended.add(stage)
        self._emit(final=True, force=True)

    def complete(self) -> None:
        """The run ended early (nothing new to resolve): every stage counts as done."""
        self.ended.update(self.stages)
        self.stage = self.stage or self.stages[-1]
        self._emit(final=True, force=True)

    def fraction(self) -> float:
        before = sum(self.weight.get(s, 0.0) for s in self.ended if s != self.stage)
        if self.stage in self.ended:
            part = 1.0
        elif self.total:
            part = min(1.0, self.done / self.total)
        else:
            part = 0.0
        return min(1.0, before + self.weight.get(self.stage, 0.0) * part)

    def _emit(self, *, final: bool, force: bool) -> None:
        now = self.clock()
        if not force and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.t0
        f = self.fraction()
        eta = elapsed * (1 - f) / f if f >= 0.02 else None
        spent = now - self.stage_t0
        ev = ProgressEvent(self.stage or "", STAGES.get(self.stage or "", ("", 0))[0], self.done, self.total,
                           self.done / spent if spent > 0 else 0.0, elapsed, f, eta, final)
        self.events.append(ev)
        if self.report is not None:
            self.report(ev)


class _NoProgress(Progress):
    """Reports nothing and keeps nothing (the default)."""

    def start(self, stage, total=None):
        pass

    def set_total(self, stage, total):
        pass

    def advance(self, stage, n=1):
        pass

    def finish(self, stage, done=None):
        pass

    def complete(self):
        pass


def of(report) -> Progress:
    """A ``Progress`` from what a caller passed: one already, a callback taking events, or nothing."""
    if isinstance(report, Progress):
        return report
    return Progress(report) if report is not None else _NoProgress()


NO_PROGRESS = _NoProgress()
