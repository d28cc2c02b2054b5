"""The independent matching set: dealer records from Faker's zh_CN provider with the corruption model
of docs/matching-evaluation.md (written before the matcher was run on it). Tune on seed 1, report
on seed 2.

    generate(n_records, seed) -> DataFrame in the resolve-file layout + truth, household, kinds, salesperson

``kinds``: the record's kinds joined by ``+`` (no_name, placeholder, romanised, traditional,
changed_mobile, typo), empty when clean.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import zhconv
from faker import Faker
from pypinyin import lazy_pinyin

SOURCES = ["DMS", "SALES", "SERVICE", "CRM"]
SOURCE_P = [0.20, 0.20, 0.40, 0.20]
PRESENT = {  # field -> per-source chance of being present (DMS, SALES, SERVICE, CRM)
    "name": (0.98, 0.97, 0.75, 0.95), "id": (0.60, 0.85, 0.10, 0.03), "mobile": (0.95, 0.90, 0.90, 0.97),
    "email": (0.30, 0.20, 0.05, 0.70), "address": (0.80, 0.70, 0.30, 0.30), "vin": (0.90, 0.95, 0.97, 0.20),
    "plate": (0.50, 0.10, 0.85, 0.10),
}
TITLES = {"M": ["先生", "总"], "F": ["女士", "小姐", "总"]}
COMPOUND = {"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "司徒", "令狐", "夏侯", "公孙", "长孙", "宇文", "尉迟"}


def _split(name: str) -> tuple[str, str]:
    k = 2 if name[:2] in COMPOUND else 1
    return name[:k], name[k:]


def _romanise(rng, sur: str, given: str) -> str:
    s, g = "".join(lazy_pinyin(sur)), "".join(lazy_pinyin(given))
    return [f"{s.title()} {g.title()}", f"{g.title()} {s.title()}", f"{s.upper()} {g.upper()}",
            f"{g.upper()} {s.upper()}"][int(rng.integers(0, 4))]


def _fmt_mobile(rng, m: str) -> str:
    r = rng.random()
    if r < 0.6:
        return m
    if r < 0.7:
        return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
    if r < 0.8:
        return f"86{m}"
    if r < 0.9:
        return f"{m[:3]}-{m[3:7]}-{m[7:]}"
    return f"{m[:3]} {m[3:7]} {m[7:]}"


def _typo_digit(rng, s: str, lo: int) -> str:
    i = int(rng.integers(lo, len(s)))
    d = str((int(s[i]) + int(rng.integers(1, 10))) % 10)
    return s[:i] + d + s[i + 1:]


def generate(n_records: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fk = Faker("zh_CN")
    fk.seed_instance(seed)
    n_people = max(10, int(n_records / 2.4))
    gender = np.where(rng.random(n_people) < 0.5, "M", "F")
    names = [fk.name_male() if g == "M" else fk.name_female() for g in gender]
    # homophones and typos draw from the characters of Faker's own name pools
    pool = sorted({c for n in names for c in _split(n)[1]})
    by_py: dict[str, list[str]] = {}
    for c, py in zip(pool, lazy_pinyin(pool)):
        by_py.setdefault(py, []).append(c)
    ids = [fk.ssn(min_age=18, max_age=80, gender=g) for g in gender]
    mobiles = [fk.phone_number() for _ in range(n_people)]
    new_mobile = [fk.phone_number() if rng.random() < 0.10 else None for _ in range(n_people)]
    emails = [fk.free_email() if rng.random() < 0.40 else None for _ in range(n_people)]
    addresses = [fk.address().rsplit(" ", 1)[0] for _ in range(n_people)]
    vins = [fk.vin() for _ in range(n_people)]
    plates = [fk.license_plate() for _ in range(n_people)]
    household = np.arange(n_people)
    shared_phone: list[str | None] = [None] * n_people
    members = np.flatnonzero(rng.random(n_people) < 0.25)
    rng.shuffle(members)
    i = 0
    while i < len(members) - 1:
        grp = members[i:i + int(rng.integers(2, 5))]
        head = int(grp[0])
        share = rng.random() < 0.6
        taken = {names[head]}
        for m in map(int, grp[1:]):
            household[m] = head
            addresses[m] = addresses[head]
            if rng.random() < 0.5:
                sur, given = _split(names[m])
                names[m] = _split(names[head])[0] + given
            while names[m] in taken:
                names[m] = fk.name_male() if gender[m] == "M" else fk.name_female()
            taken.add(names[m])
            if share:
                shared_phone[m] = mobiles[head]
        i += len(grp)
    resold_to: dict[int, int] = {}
    for s in np.flatnonzero(rng.random(n_people) < 0.03):
        b = int(rng.integers(0, n_people))
        if b != s and b not in resold_to:
            resold_to[b] = int(s)
    salespeople = [fk.phone_number() for _ in range(30)]

    k = np.minimum(1 + rng.poisson(1.4, n_people), 8)
    person = np.repeat(np.arange(n_people), k)[:n_records]
    rows = []
    for j, p in enumerate(map(int, person)):
        si = int(rng.choice(4, p=SOURCE_P))
        src = SOURCES[si]
        kinds = []
        present = {f: rng.random() < ps[si] for f, ps in PRESENT.items()}
        name = ""
        if present["name"]:
            sur, given = _split(names[p])
            r = rng.random()
            if r < 0.08:
                g = gender[p] if rng.random() < 0.8 else ("F" if gender[p] == "M" else "M")
                name = sur + TITLES[g][int(rng.integers(0, len(TITLES[g])))]
                kinds.append("placeholder")
            elif r < 0.08 + (0.08 if src == "CRM" else 0.04):
                name = _romanise(rng, sur, given)
                kinds.append("romanised")
            elif r < 0.20:
                name = zhconv.convert(names[p], "zh-hant")
                kinds.append("traditional")
            elif r < 0.24 and given:
                c = int(rng.integers(0, len(given)))
                alt = [x for x in by_py.get(lazy_pinyin(given[c])[0], []) if x != given[c]]
                if alt:
                    given = given[:c] + alt[int(rng.integers(0, len(alt)))] + given[c + 1:]
                    kinds.append("typo")
                name = sur + given
            elif r < 0.26 and given:
                c = int(rng.integers(0, len(given)))
                given = given[:c] + pool[int(rng.integers(0, len(pool)))] + given[c + 1:]
                name = sur + given
                kinds.append("typo")
            else:
                name = names[p]
        else:
            kinds.append("no_name")
        mob = ""
        salesperson = ""
        if present["mobile"]:
            m = mobiles[p]
            if new_mobile[p] and rng.random() < 0.5:
                m = new_mobile[p]
                kinds.append("changed_mobile")
            if shared_phone[p] and rng.random() < 0.5:
                m = shared_phone[p]
            if src == "SALES" and rng.random() < 0.03:
                m = salesperson = salespeople[int(rng.integers(0, 30))]
            r = rng.random()
            if r < 0.01:
                m = _typo_digit(rng, m, 3)
                kinds.append("typo")
            elif r < 0.02:
                m = "13800000000"
            mob = _fmt_mobile(rng, m)
        idn = ""
        if present["id"]:
            idn = ids[p]
            if idn.endswith("X") and rng.random() < 0.03:
                idn = idn[:-1] + "x"
            if src in ("DMS", "SALES") and rng.random() < 0.02:
                idn = idn[:15] + "000" if rng.random() < 0.5 else f"{float(idn[:17] + '0'):.14E}"
        email = ""
        if present["email"] and emails[p]:
            email = emails[p].upper() if rng.random() < 0.05 else emails[p]
        address = ""
        if present["address"]:
            address = addresses[p]
            if rng.random() < 0.3:
                address = address[address.find("市") + 1:] if "市" in address[:8] else address
            if rng.random() < 0.03:
                address = zhconv.convert(address, "zh-hant")
        vin = ""
        plate = ""
        if present["vin"]:
            vin = vins[resold_to[p]] if p in resold_to and rng.random() < 0.5 else vins[p]
            r = rng.random()
            if r < 0.02:
                pos = int(rng.choice([3, 4, 5, 6, 10, 12, 13, 14, 15, 16]))
                c = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"[int(rng.integers(0, 33))]
                vin = vin[:pos] + (c if c != vin[pos] else ("7" if vin[pos] != "7" else "8")) + vin[pos + 1:]
                kinds.append("typo")
            elif r < 0.04:
                vin = vin.lower()
        if present["plate"]:
            plate = plates[p]      # a resold car's buyer has a plate of his own
        rows.append((src, f"{src[0]}{j:08d}", "PERSON", name, "", mob, "", idn, email, address, vin, plate,
                     f"P{p}", f"H{household[p]}", "+".join(dict.fromkeys(kinds)), salesperson))
    df = pd.DataFrame(rows, columns=["source", "source_id", "customer_type", "name", "company", "mobile", "phone",
                                     "id_number", "email", "address", "vin", "plate", "truth", "household", "kinds",
                                     "salesperson"])
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
