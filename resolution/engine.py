"""Blocking, probabilistic (Fellegi-Sunter) scoring and constrained clustering on DuckDB.

A ``Model`` declares blocking keys and comparisons in SQL over two records ``l`` and ``r``. Candidate
pairs come from the blocking keys (a key value shared by more than ``cap`` records is not identifying
and is left out); each pair gets one level per comparison; ``u`` probabilities are measured on random
pairs, term-frequency adjusted where declared, and ``m`` probabilities are estimated by expectation
maximisation over the distinct level patterns. The match weight is the sum of log2(m/u). A model's
``decide`` turns levels and weight into MERGE / REVIEW / HOUSEHOLD / NONE; clustering then joins MERGE
pairs best-first, refusing any join that would put conflicting identities (two valid IDs, a manual
split) into one cluster.

Over 400 lines on purpose: the matching engine (blocking, scoring, EM, constrained clustering and its
three passes) kept with the data structures they share; the store and file paths call into it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

MERGE, REVIEW, HOUSEHOLD, NONE = "MERGE", "REVIEW", "HOUSEHOLD", "NONE"


@dataclass
class Comparison:
    name: str
    levels: list[tuple[str, str]]          # (label, SQL condition over l.* / r.*); the first true wins
    missing: str                           # SQL: the comparison has nothing to say (weight 0)
    tf_column: str | None = None           # term-frequency adjust the first level on this column
    m_start: list[float] | None = None     # EM start for the levels (+ the final "else" level)


@dataclass
class Model:
    name: str
    version: str
    blocking: list[tuple[str, str, int]]   # (label, SQL key expression over one record, cap)
    comparisons: list[Comparison]
    decide: Callable[["Scored"], np.ndarray]
    merge_weight: float = 10.0
    review_weight: float = 4.0
    em_iterations: int = 25
    random_pairs: int = 300_000
    where: str = "TRUE"                    # a filter every candidate pair must pass (types agree...)
    defaults: Callable[[], dict | None] = lambda: None   # shipped parameters (``defaults.load``)
    min_estimate_records: int = 20_000     # below this, the input's own estimates are not used at all
    prior_records: int = 200_000           # the defaults count as this many records when blending


@dataclass
class Scored:
    pairs: pd.DataFrame                    # l, r (record positions), one int8 column per comparison, weight
    levels: dict[str, list[str]]           # comparison -> level labels (index = level code; -1 = missing)
    model: Model
    timings: dict[str, float] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def level(self, comparison: str, *labels: str) -> np.ndarray:
        codes = [self.levels[comparison].index(x) for x in labels]
        return np.isin(self.pairs[comparison].to_numpy(), codes)

    def missing(self, comparison: str) -> np.ndarray:
        return self.pairs[comparison].to_numpy() == -1


def connect(threads: int | None = None):
    import duckdb
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads={int(threads)}")
    con.execute("SET preserve_insertion_order=false")
    return con


def _level_sql(c: Comparison) -> str:
    parts = [f"WHEN {c.missing} THEN -1"] + [f"WHEN {cond} THEN {i}" for i, (_, cond) in enumerate(c.levels)]
    return f"CAST(CASE {' '.join(parts)} ELSE {len(c.levels)} END AS TINYINT) AS {c.name}"


def candidate_pairs(con, model: Model, records: str = "rec", only_new: bool = False) -> int:
    """Table ``cand(l, r)``: distinct pairs l < r sharing a blocking key (with ``only_new``: pairs where
    at least one side is a new record, i.e. ``rec.is_new``)."""
    selects = []
    for label, expr, cap in model.blocking:
        k = f"k_{label}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {k} AS SELECT * FROM "
                    f"(SELECT rid, {expr} AS k, is_new FROM {records}) WHERE k IS NOT NULL")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {k}_ok AS SELECT k FROM {k} GROUP BY k "
                    f"HAVING count(*) BETWEEN 2 AND {int(cap)}" + (" AND bool_or(is_new)" if only_new else ""))
        new = " AND (a.is_new OR b.is_new)" if only_new else ""
        selects.append(f"SELECT a.rid AS l, b.rid AS r FROM {k} a JOIN {k} b ON a.k = b.k AND a.rid < b.rid{new} "
                       f"WHERE a.k IN (SELECT k FROM {k}_ok)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE cand AS SELECT DISTINCT l, r FROM ({' UNION ALL '.join(selects)})")
    for label, _, _ in model.blocking:
        con.execute(f"DROP TABLE IF EXISTS k_{label}; DROP TABLE IF EXISTS k_{label}_ok")
    return con.execute("SELECT count(*) FROM cand").fetchall()[0][0]


def _compare(con, model: Model, pairs: str, records: str = "rec") -> pd.DataFrame:
    cols = ", ".join(_level_sql(c) for c in model.comparisons)
    tf = ", ".join(f"l.{c.tf_column} AS tf_{c.name}" for c in model.comparisons if c.tf_column)
    sql = (f"SELECT p.l, p.r, {cols}{', ' + tf if tf else ''} FROM {pairs} p "
           f"JOIN {records} l ON l.rid = p.l JOIN {records} r ON r.rid = p.r WHERE {model.where}")
    return con.execute(sql).df()


def _random_pairs(con, model: Model, n: int, records: str, seed: int) -> pd.DataFrame:
    total = con.execute(f"SELECT count(*) FROM {records}").fetchall()[0][0]
    rng = np.random.default_rng(seed)
    a = rng.integers(0, total, n)
    b = rng.integers(0, total, n)
    keep = a != b
    con.register("rnd_df", pd.DataFrame({"l": np.minimum(a, b)[keep], "r": np.maximum(a, b)[keep]}))
    con.execute("CREATE OR REPLACE TEMP TABLE rnd AS SELECT * FROM rnd_df")
    con.unregister("rnd_df")
    return _compare(con, model, "rnd", records)


def estimate(con, model: Model, cand: pd.DataFrame, records: str = "rec", seed: int = 1) -> dict:
    """u from random pairs, m by EM over the candidate pairs' distinct level patterns (u fixed)."""
    rnd = _random_pairs(con, model, model.random_pairs, records, seed)
    u, m = {}, {}
    for c in model.comparisons:
        k = len(c.levels) + 1
        counts = np.bincount(rnd[c.name].to_numpy()[rnd[c.name].to_numpy() >= 0], minlength=k).astype(float)
        u[c.name] = (counts + 0.5) / (counts.sum() + 0.5 * k)
        start = c.m_start or ([0.9] + [0.05 / max(1, k - 2)] * (k - 2) + [0.05])
        m[c.name] = np.array(start, dtype=float) / sum(start)
    names = [c.name for c in model.comparisons]
    pat = cand.groupby(names, observed=True).size().reset_index(name="n")
    n = pat["n"].to_numpy(dtype=float)
    lam = 0.3
    for _ in range(model.em_iterations):
        lm = np.full(len(pat), math.log(lam))
        lu = np.full(len(pat), math.log(1 - lam))
        for c in model.comparisons:
            lv = pat[c.name].to_numpy()
            ok = lv >= 0
            lm[ok] += np.log(m[c.name][lv[ok]])
            lu[ok] += np.log(u[c.name][lv[ok]])
        p = 1 / (1 + np.exp(np.clip(lu - lm, -50, 50)))
        w = p * n
        lam = float(np.clip(w.sum() / n.sum(), 1e-6, 1 - 1e-6))
        for c in model.comparisons:
            lv = pat[c.name].to_numpy()
            k = len(c.levels) + 1
            ok = lv >= 0
            acc = np.bincount(lv[ok], weights=w[ok], minlength=k) + 1e-3
            m[c.name] = acc / acc.sum()
    return {"u": u, "m": m, "lambda": lam}


def blend(model: Model, estimated: dict | None, n: int) -> dict:
    """Parameters for an input of ``n`` records: the model's shipped defaults (estimated once on large
    data, stored with the model version) when the input is smaller than ``min_estimate_records``;
    otherwise each probability blended ``a * estimated + (1 - a) * default`` with
    ``a = n / (n + prior_records)``. A model without defaults uses its estimates as they are."""
    default = model.defaults()
    if default is None:
        return estimated
    out = {"u": {}, "m": {}, "lambda": default["lambda"], "tf": default.get("tf", {}), "records": n,
           "blend": 0.0}
    a = n / (n + model.prior_records) if estimated is not None and n >= model.min_estimate_records else 0.0
    out["blend"] = a
    for kind in ("u", "m"):
        for name, d in default[kind].items():
            d = np.asarray(d, dtype=float)
            e = np.asarray(estimated[kind][name], dtype=float) if a else d
            v = a * e + (1 - a) * d
            out[kind][name] = v / v.sum()
    if a:
        out["lambda"] = a * estimated["lambda"] + (1 - a) * default["lambda"]
    return out


def score(con, model: Model, params: dict | None = None, records: str = "rec", only_new: bool = False,
          seed: int = 1, on_candidates: Callable[[int], None] | None = None) -> Scored:
    """Candidate pairs, their levels and weights and the model's decision. ``on_candidates(n)`` is
    called once the n candidate pairs are known (before comparing them: the long part)."""
    t = {}
    t0 = time.perf_counter()
    n_cand = candidate_pairs(con, model, records, only_new=only_new)
    t["blocking"] = time.perf_counter() - t0
    if on_candidates is not None:
        on_candidates(n_cand)
    t0 = time.perf_counter()
    cand = _compare(con, model, "cand", records)
    t["comparison"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    total = con.execute(f"SELECT count(*) FROM {records}").fetchall()[0][0]
    if params is None:
        big = model.defaults() is None or total >= model.min_estimate_records
        params = blend(model, estimate(con, model, cand, records, seed) if big else None, total)
    t["training"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    weight = np.zeros(len(cand))
    for c in model.comparisons:
        lv = cand[c.name].to_numpy()
        ok = lv >= 0
        bf = np.log2(params["m"][c.name] / params["u"][c.name])
        contrib = np.where(ok, bf[np.where(ok, lv, 0)], 0.0)
        if c.tf_column:
            # the first level's weight from the value's own frequency instead of the average one
            freq = con.execute(f"SELECT {c.tf_column} AS v, count(*) AS n FROM {records} "
                               f"WHERE {c.tf_column} IS NOT NULL GROUP BY 1").df()
            vals = cand[f"tf_{c.name}"]
            f = vals.map(dict(zip(freq["v"], freq["n"]))).to_numpy(dtype=float, na_value=np.nan)
            u_tf = np.where(np.isnan(f), params["u"][c.name][0], np.maximum(f / total, 1e-7))
            shipped = params.get("tf", {}).get(c.tf_column)
            if shipped is not None:
                # a value's frequency: the shipped one (population statistics; else the level's average)
                # blended with the input's own as the parameters are (none in a small input)
                base = vals.map(shipped).to_numpy(dtype=float, na_value=np.nan)
                base = np.where(np.isnan(base), params["u"][c.name][0], base)
                a = params.get("blend", 0.0)
                u_tf = np.where(np.isnan(f), base, a * np.maximum(f / total, 1e-7) + (1 - a) * base)
            first = ok & (lv == 0)
            contrib = np.where(first, np.log2(params["m"][c.name][0] / np.maximum(u_tf, params["u"][c.name][0] / 50)),
                               contrib)
        weight += contrib
    prior = math.log2(params["lambda"] / (1 - params["lambda"])) if params.get("lambda") else 0.0
    cand = cand.drop(columns=[c for c in cand.columns if c.startswith("tf_")])
    cand["weight"] = weight + prior
    scored = Scored(cand, {c.name: [lbl for lbl, _ in c.levels] + ["else"] for c in model.comparisons}, model, t,
                    params)
    cand["decision"] = model.decide(scored)
    t["decision"] = time.perf_counter() - t0
    scored.timings["candidates"] = n_cand
    return scored


# ----------------------------------------------------------------------------------- clustering

class Clusters:
    """Union-find over record positions with cannot-link constraints: two clusters holding different
    valid IDs or different genders (or records a manual decision split) are never joined; two
    clusters holding different full names only through a pair that itself agrees on the name (a
    homophone, a typo), never through a record without one (张先生, a blank service record), so that
    one nameless record cannot chain two people of a household together."""

    def __init__(self, n: int, ids: np.ndarray | None = None, names: np.ndarray | None = None,
                 genders: np.ndarray | None = None):
        self.parent = np.arange(n)
        self.ids = self._sets(ids)
        self.names = self._sets(names)
        self.genders = self._sets(genders)
        self.cannot: dict[int, set[int]] = {}

    def start_from(self, labels: np.ndarray) -> None:
        """Start from existing clusters (``labels``: a root position per record, e.g. the records of
        one existing master pointing at its first): each root holds the IDs, names and genders of its
        records, so the constraints see the whole existing cluster."""
        labels = np.asarray(labels, dtype=np.int64)
        self.parent = labels.copy()
        roots = self.labels()
        for attr in (self.ids, self.names, self.genders):
            held = list(attr.items())
            attr.clear()
            for i, vals in held:
                attr.setdefault(int(roots[i]), set()).update(vals)

    @staticmethod
    def _sets(values) -> dict[int, set]:
        if values is None:
            return {}
        return {int(i): {values[i]} for i in np.flatnonzero(pd.notna(values))}

    def find(self, x: int) -> int:
        p = self.parent
        root = x
        while p[root] != root:
            root = p[root]
        while p[x] != root:
            p[x], x = root, p[x]
        return int(root)

    def forbid(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        self.cannot.setdefault(ra, set()).add(rb)
        self.cannot.setdefault(rb, set()).add(ra)

    def can_join(self, ra: int, rb: int, name_edge: bool = True) -> bool:
        ia, ib = self.ids.get(ra), self.ids.get(rb)
        if ia and ib and ia.isdisjoint(ib):
            return False
        ga, gb = self.genders.get(ra), self.genders.get(rb)
        if ga and gb and ga.isdisjoint(gb):
            return False
        if not name_edge:
            na, nb = self.names.get(ra), self.names.get(rb)
            if na and nb and na.isdisjoint(nb):
                return False
        ca = self.cannot.get(ra)
        if ca and any(self.find(x) == rb for x in ca):
            return False
        return True

    def union(self, a: int, b: int, force: bool = False, name_edge: bool = True) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if not force and not self.can_join(ra, rb, name_edge):
            return False
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        for attr in (self.ids, self.names, self.genders):
            if rb in attr:
                attr.setdefault(ra, set()).update(attr.pop(rb))
        if rb in self.cannot:
            self.cannot.setdefault(ra, set()).update(self.cannot.pop(rb))
        return True

    def labels(self) -> np.ndarray:
        p = self.parent
        while True:
            q = p[p]
            if np.array_equal(q, p):
                return q
            p = q


def name_edges(pairs: pd.DataFrame, scored: "Scored | None" = None) -> np.ndarray:
    """Per pair: whether the pair itself agrees on the name (exact, pinyin, close, or the surname of
    two full names, merged on two identifiers), which lets it
    join clusters holding different full names (see ``Clusters``). Pairs without a ``name``
    comparison (other models) always may."""
    if "name" not in pairs:
        return np.ones(len(pairs), dtype=bool)
    labels = scored.levels["name"] if scored is not None else ["exact", "pinyin", "close", "surname", "same_surname"]
    codes = [labels.index(x) for x in ("exact", "pinyin", "close", "same_surname") if x in labels]
    return np.isin(pairs["name"].to_numpy(), codes)


def best_first(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs by weight, highest first; equal weights by record positions, so that the order (and the
    clusters a constraint lets form) does not depend on the order DuckDB returned the pairs in."""
    return pairs.sort_values(["weight", "l", "r"], ascending=[False, True, True], kind="stable")


def merge_pairs(cl: Clusters, pairs: pd.DataFrame, scored: "Scored | None" = None,
                on_progress: Callable[[int], None] | None = None, step: int = 100_000) -> None:
    """Join the MERGE pairs best-first (highest weight first) under ``cl``'s constraints;
    ``on_progress(k)`` after each ``step`` pairs (k pairs done since the last call)."""
    merge = best_first(pairs[pairs["decision"] == MERGE])
    ls, rs, es = merge["l"].to_numpy(), merge["r"].to_numpy(), name_edges(merge, scored)
    for i in range(0, len(ls), step):
        for a, b, e in zip(ls[i:i + step], rs[i:i + step], es[i:i + step]):
            cl.union(int(a), int(b), name_edge=bool(e))
        if on_progress is not None:
            on_progress(len(ls[i:i + step]))


def cluster_into(cl: Clusters, pairs: pd.DataFrame, keys: dict[str, np.ndarray] | None = None,
                 on_progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The clustering every path runs (``resolve-file``, ``resolve`` on the store, increments, the
    bench): the MERGE pairs best-first under ``cl``'s constraints, then the REVIEW pairs whose
    clusters share a full name (``join_on_cluster_names``), then clusters joined on their added-up
    evidence (``join_on_cluster_evidence``, ``keys``: the identifiers two masters compare). ``cl``
    carries what the caller starts from (existing masters, manual splits and links). Returns the
    cluster label (root position) per record."""
    merge_pairs(cl, pairs, on_progress=on_progress)
    join_on_cluster_names(cl, pairs)
    join_on_cluster_evidence(cl, pairs, keys)
    return cl.labels()


def cluster(n: int, pairs: pd.DataFrame, ids: np.ndarray | None = None, names: np.ndarray | None = None,
            genders: np.ndarray | None = None, force_link: list[tuple[int, int]] = (),
            force_split: list[tuple[int, int]] = (), keys: dict[str, np.ndarray] | None = None,
            start: np.ndarray | None = None, on_progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Cluster label (smallest member position) for each of n records, from MERGE pairs best-first, then
    the REVIEW pairs whose masters share a full name, then masters joined on their added-up evidence
    (``keys``: record values compared between two masters, see ``join_on_cluster_evidence``).
    ``start``: existing clusters to start from (a root position per record, see
    ``Clusters.start_from``); ``force_split`` pairs are never joined, ``force_link`` pairs always."""
    cl = Clusters(n, ids, names, genders)
    if start is not None:
        cl.start_from(start)
    for a, b in force_split:
        cl.forbid(a, b)
    for a, b in force_link:
        cl.union(a, b, force=True)
    return cluster_into(cl, pairs, keys, on_progress)


def join_on_cluster_names(cl: Clusters, pairs: pd.DataFrame) -> int:
    """Second pass: a REVIEW pair with at least one agreeing strong identifier (``pairs["evidence"]``)
    whose two clusters already hold the same full name is joined, under the same constraints: a
    nameless service record that the VIN and plate put with 张磊 takes 张磊's name to a CRM record of
    张磊 with the same mobile. Returns the number of joins."""
    if "evidence" not in pairs or not cl.names:
        return 0
    cand = best_first(pairs[(pairs["decision"] == REVIEW) & (pairs["evidence"] >= 1)])
    joined = 0
    for a, b in zip(cand["l"].to_numpy(), cand["r"].to_numpy()):
        ra, rb = cl.find(int(a)), cl.find(int(b))
        na, nb = cl.names.get(ra), cl.names.get(rb)
        if ra != rb and na and nb and not na.isdisjoint(nb) and cl.union(ra, rb, name_edge=False):
            joined += 1
    return joined


# evidence bits of a pair (``pairs["evidence_mask"]``, set by the model's decide)
EV_MOBILE, EV_VIN, EV_PLATE, EV_EMAIL, EV_ID, EV_OWN_MOBILE, EV_ADDRESS, EV_VIN_TYPO = (1 << i for i in range(8))
EV_STRONG = EV_MOBILE | EV_VIN | EV_PLATE | EV_EMAIL | EV_ID
EV_PERSONAL = EV_VIN | EV_PLATE | EV_EMAIL | EV_ID        # what a household does not share
# ``pairs["name_rel"]``: 3 the names agree, 2 close (a typo in a longer name), 1 a placeholder's surname, 0 none


def _popcount(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    return sum((x >> i) & 1 for i in range(8))


def _key_codes(keys: dict[str, np.ndarray] | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per key column: (positions of the records holding a value, the value as an integer code)."""
    out = []
    for v in (keys or {}).values():
        codes, _ = pd.factorize(pd.Series(v, dtype=object))
        idx = np.flatnonzero(codes >= 0)
        if len(idx):
            out.append((idx, codes[idx].astype(np.int64)))
    return out


def _disagreeing(lab: np.ndarray, codes: list[tuple[np.ndarray, np.ndarray]], gid: np.ndarray, root: np.ndarray,
                 side: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group of masters (``gid``; side 0 the joining master, side 1 its partners): whether both
    sides hold a value of some key (VIN, plate, e-mail, mobile, ID) and no value in common."""
    out = np.zeros(n_groups, dtype=bool)
    members = pd.DataFrame({"gid": gid, "root": root, "side": side})
    for idx, code in codes:
        r = lab[idx]
        keep = np.isin(r, root)
        recs = pd.DataFrame({"root": r[keep], "val": code[keep]}).drop_duplicates()
        x = members.merge(recs, on="root")
        if x.empty:
            continue
        sides = x.groupby("gid")["side"].nunique()
        both = sides.index[sides.to_numpy() == 2].to_numpy()
        common = x.drop_duplicates(["gid", "val", "side"]).groupby(["gid", "val"]).size()
        common = common[common.to_numpy() == 2].index.get_level_values(0).unique().to_numpy()
        out[np.setdiff1d(both, common)] = True
    return out


def _master_rule(m: np.ndarray, rel: np.ndarray, named_pair: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For master pairs with the evidence ``m`` (bits, OR-ed over their record pairs), the best name
    relation ``rel`` of their record pairs and whether both hold a full name: (joined outright,
    joined if no key disagrees). A master without a full name (blank, placeholder) joins outright on
    two different strong identifiers (issue 18: one alone goes to review); on a mobile no other name
    uses and the same address if nothing disagrees (a placeholder of the same surname on such a mobile
    alone does not: in households the head's phone carries the members' 张女士 too, 8 false pairs on
    the generated 100k, 24 on the independent set); a name one typo away (王晓明 / 王晓敏, the close
    level) joins on a VIN, plate, e-mail or ID if nothing disagrees."""
    kinds = _popcount(m & EV_STRONG)
    own = (m & EV_OWN_MOBILE) > 0
    nameless = ~named_pair
    outright = nameless & (kinds >= 2)
    guarded = ((nameless & own & ((m & EV_ADDRESS) > 0))
               | (named_pair & (rel == 2) & ((m & EV_PERSONAL) > 0)))
    return outright, guarded & ~outright


def join_on_cluster_evidence(cl: Clusters, pairs: pd.DataFrame, keys: dict[str, np.ndarray] | None = None,
                             rounds: int = 3) -> int:
    """Third pass, master against master: the evidence of all record pairs between two masters added
    up. A master without a full name (blank and placeholder records) joins the named master with
    which two or more different strong identifiers agree (``pairs["evidence_mask"]``) and no record
    pair conflicts (``pairs["conflict"]``): a service record with the mobile of one record of 张磊 and
    the VIN of another is 张磊's, though no one record shares two with it. Several named masters of one
    full name count as one (and are joined too); a nameless master matching masters of different
    names joins the one holding two strong identifiers, if one alone does. Weaker evidence
    (``_master_rule``'s guarded joins) also needs no key to disagree between the two sides (both hold
    a VIN, a mobile, ... and none in common). Returns the number of joins."""
    if "evidence_mask" not in pairs or not len(pairs):
        return 0
    n = len(cl.parent)
    mask = pairs["evidence_mask"].to_numpy().astype(np.int64)
    conflict = pairs["conflict"].to_numpy().astype(bool)
    rel = pairs["name_rel"].to_numpy().astype(np.int8)
    sel = (mask > 0) | conflict
    l0, r0 = pairs["l"].to_numpy()[sel], pairs["r"].to_numpy()[sel]
    mask, conflict, rel = mask[sel], conflict[sel], rel[sel]
    codes = _key_codes(keys)
    joined = 0
    for _ in range(rounds):
        lab = cl.labels()
        a, b = lab[l0], lab[r0]
        diff = a != b
        if not diff.any():
            break
        key = np.minimum(a, b)[diff].astype(np.int64) * n + np.maximum(a, b)[diff]
        uniq, inv = np.unique(key, return_inverse=True)
        m = np.zeros(len(uniq), dtype=np.int64)
        np.bitwise_or.at(m, inv, mask[diff])
        c = np.zeros(len(uniq), dtype=bool)
        np.logical_or.at(c, inv, conflict[diff])
        rl = np.zeros(len(uniq), dtype=np.int8)
        np.maximum.at(rl, inv, rel[diff])
        A, B = uniq // n, uniq % n
        named = np.zeros(n, dtype=bool)
        if cl.names:
            named[np.fromiter((k for k, v in cl.names.items() if v), dtype=np.int64)] = True
        na, nb = named[A], named[B]
        keep = ~c & ((na ^ nb) | (na & nb & (rl == 2)))
        A, B, m, rl, na, nb = A[keep], B[keep], m[keep], rl[keep], na[keep], nb[keep]
        if not len(A):
            break
        flip = na & ~nb                     # x: the master without a name (or the smaller root) joins y
        x, y = np.where(flip, B, A), np.where(flip, A, B)
        both = na & nb
        # one representative name per named master: partners of one name count as one master
        ys = np.unique(y)
        rep_of = {}
        rep = np.fromiter((rep_of.setdefault(min(cl.names[int(v)]), len(rep_of)) for v in ys), np.int64, len(ys))
        yrep = rep[np.searchsorted(ys, y)]
        f = pd.DataFrame({"x": x, "y": y, "m": m, "rel": rl, "yrep": yrep, "both": both})
        nl = f[~both]
        reps = nl.groupby("x")["yrep"].transform("nunique").to_numpy()
        one = nl[reps == 1]
        # one name among the partners: their evidence added up
        gx, ginv = np.unique(one["x"].to_numpy(), return_inverse=True)
        gm = np.zeros(len(gx), dtype=np.int64)
        np.bitwise_or.at(gm, ginv, one["m"].to_numpy())
        grl = np.zeros(len(gx), dtype=np.int8)
        np.maximum.at(grl, ginv, one["rel"].to_numpy())
        out, guard = _master_rule(gm, grl, np.zeros(len(gx), dtype=bool))
        okx = (out | guard)
        sel_one = one[okx[ginv]]
        guard_one = guard[ginv][okx[ginv]]
        # partners of several names: only the one holding two strong identifiers, if one alone does
        many = nl[reps > 1]
        o2, g2 = _master_rule(many["m"].to_numpy(), many["rel"].to_numpy(), np.zeros(len(many), dtype=bool))
        hit = many[o2].assign(guard=False)
        hit = hit[hit.groupby("x")["y"].transform("size").to_numpy() == 1]
        # two named masters, one name a typo of the other
        nm = f[both]
        o3, g3 = _master_rule(nm["m"].to_numpy(), nm["rel"].to_numpy(), np.ones(len(nm), dtype=bool))
        nm = nm[o3 | g3].assign(guard=g3[o3 | g3])
        todo = pd.concat([pd.DataFrame({"x": sel_one["x"].to_numpy(), "y": sel_one["y"].to_numpy(), "guard": guard_one}),
                          hit[["x", "y", "guard"]], nm[["x", "y", "guard"]]], ignore_index=True)
        if todo.empty:
            break
        gid = pd.factorize(todo["x"])[0]
        todo["gid"] = gid
        bad = np.zeros(gid.max() + 1, dtype=bool)
        if codes:
            g = todo[todo["guard"].to_numpy()]
            if len(g):
                xs = g.drop_duplicates("gid")
                bad = _disagreeing(lab, codes, np.r_[xs["gid"].to_numpy(), g["gid"].to_numpy()],
                                   np.r_[xs["x"].to_numpy(), g["y"].to_numpy()],
                                   np.r_[np.zeros(len(xs), dtype=np.int8), np.ones(len(g), dtype=np.int8)], len(bad))
        todo = todo[~bad[todo["gid"].to_numpy()]]
        n0 = joined
        for xv, yv in zip(todo["x"].to_numpy(), todo["y"].to_numpy()):
            rx, ry = cl.find(int(xv)), cl.find(int(yv))
            both_named = bool(cl.names.get(rx)) and bool(cl.names.get(ry))
            if rx != ry and cl.union(rx, ry, name_edge=both_named):
                joined += 1
        if joined == n0:
            break
    return joined
