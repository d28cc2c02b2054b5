"""Synthetic dealer customer records with ground truth, for tests and ``bench/resolution.py``.

People buy and service cars at a dealer and appear in several sources (DMS customer master, vehicle
sales, service visits, CRM leads and contacts) with the noise seen in real dealer data: homophone
characters (张伟 / 张玮), Traditional characters, romanised names in either order, placeholders (张先生),
phone formats and number changes, a salesperson's own phone typed for customers, households sharing a
phone and an address, IDs mostly missing in the CRM, VIN typos, vehicles resold to other people, fleet
customers (organisations) with several contact persons, and namesakes.

Output: a DataFrame in the resolve-file layout plus ``truth`` (the real entity) and ``kind`` columns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dealersync.schemas.rules import RID_CHECK as _RID_CHECK, RID_WEIGHTS as _RID_WEIGHTS
from dealersync.schemas.identifiers import make_vins

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
                "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔")
# heavy head: 王 李 张 ~7% each, like the population
_SW = np.array([7.2, 7.4, 6.8, 5.4, 4.5, 3.1, 2.2, 2.0, 2.0, 1.7] + [1.0] * 20 + [0.5] * (len(SURNAMES) - 30))
HOMOPHONES = ["伟玮炜纬", "静婧靖", "芳方昉", "丽莉俐", "敏珉", "军君钧", "杰洁", "磊垒", "勇涌", "艳燕彦", "强蔷",
              "涛滔", "明铭鸣", "华骅", "平萍", "刚钢", "红宏鸿", "霞侠", "辉晖", "斌彬", "鹏朋", "飞菲", "亮谅",
              "娟鹃", "英瑛", "峰锋丰", "超潮", "宇雨羽", "浩皓昊", "博波", "晨辰臣", "琳林霖", "婷亭", "欣新鑫",
              "佳嘉家", "怡宜", "思斯", "子紫梓", "梦孟", "诗师", "雪薛", "玉钰", "建健", "国帼", "文雯", "志智",
              "海", "秀", "桂", "兰", "春", "金", "小晓", "云芸", "立力", "永", "德", "东冬", "凤", "玲铃", "瑞睿"]
GIVEN_CHARS = [g[0] for g in HOMOPHONES]
_HOMO = {c: g for g in HOMOPHONES for c in g}
TRAD = {"张": "張", "陈": "陳", "刘": "劉", "杨": "楊", "黄": "黃", "赵": "趙", "吴": "吳", "郑": "鄭", "钟": "鍾",
        "伟": "偉", "丽": "麗", "军": "軍", "杰": "傑", "红": "紅", "华": "華", "辉": "輝", "飞": "飛", "涛": "濤",
        "强": "強", "娟": "娟", "凤": "鳳", "东": "東", "国": "國", "云": "雲", "晓": "曉", "龙": "龍", "马": "馬",
        "孙": "孫", "许": "許", "邓": "鄧", "韩": "韓", "冯": "馮", "宋": "宋", "谢": "謝", "罗": "羅", "梁": "梁"}
REGIONS = [("广东省", "广州市", "天河区", "440106"), ("广东省", "深圳市", "南山区", "440305"),
           ("广东省", "佛山市", "顺德区", "440606"), ("广东省", "东莞市", "南城区", "441900"),
           ("湖南省", "长沙市", "岳麓区", "430104"), ("浙江省", "杭州市", "西湖区", "330106")]
ROADS = ["中山", "解放", "人民", "建设", "滨江", "花城", "黄埔", "科技", "学府", "新港", "东风", "迎宾"]
COMPANY_WORDS = ["恒通", "瑞丰", "鸿运", "宏达", "华泰", "金鹏", "安达", "顺通", "广骏", "粤运", "新城", "联合"]
COMPANY_KINDS = ["物流", "运输", "汽车租赁", "建设工程", "出租汽车", "快递", "商贸", "电力工程"]


def _rid(rng, n: int, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    births = pd.Timestamp("1955-01-01") + pd.to_timedelta(rng.integers(0, 365 * 48, n), unit="D")
    seq = rng.integers(0, 999, n)
    body = [f"{r}{b}{s:03d}" for r, b, s in zip(regions, births.strftime("%Y%m%d"), seq)]
    digits = np.frombuffer("".join(body).encode(), dtype=np.uint8).reshape(n, 17) - 48
    check = _RID_CHECK[(digits.astype(np.int64) @ _RID_WEIGHTS) % 11].tobytes().decode()
    gender = np.where(seq % 2 == 1, "M", "F")
    return np.array([b + c for b, c in zip(body, check)], dtype=object), gender


def _mobiles(rng, n: int) -> np.ndarray:
    prefixes = np.array(["134", "135", "136", "137", "138", "139", "150", "151", "158", "159", "186", "187",
                         "188", "177", "199", "130", "131", "132", "155", "156", "185", "133", "153", "180", "189"])
    p = prefixes[rng.integers(0, len(prefixes), n)]
    return np.array([f"{a}{b:08d}" for a, b in zip(p, rng.integers(0, 10 ** 8, n))], dtype=object)


def _fmt_mobile(rng, m: str) -> str:
    r = rng.random()
    if r < 0.70:
        return m
    if r < 0.78:
        return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
    if r < 0.86:
        return f"86{m}"
    if r < 0.93:
        return f"{m[:3]}-{m[3:7]}-{m[7:]}"
    return f"{m[:3]} {m[3:7]} {m[7:]}"


def _pinyin_name(sur: str, given: str, rng) -> str:
    from pypinyin import lazy_pinyin
    from dealersync.resolution.normalise import SURNAME_READINGS
    s = SURNAME_READINGS.get(sur) or "".join(lazy_pinyin(sur))
    g = "".join(lazy_pinyin(given))
    form = rng.integers(0, 4)
    return [f"{s.title()} {g.title()}", f"{g.title()} {s.title()}", f"{s.upper()} {g.upper()}",
            f"{g.upper()} {s.upper()}"][form]


def _vin_typo(rng, v: str) -> str:
    pos = int(rng.choice([3, 4, 5, 6, 10, 12, 13, 14, 15, 16]))
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    c = alphabet[rng.integers(0, len(alphabet))]
    return v[:pos] + (c if c != v[pos] else "7" if v[pos] != "7" else "8") + v[pos + 1:]


def generate(n_records: int, seed: int = 7) -> pd.DataFrame:
    """About ``n_records`` records (the exact count is returned) with a ``truth`` entity id."""
    rng = np.random.default_rng(seed)
    n_people = max(10, int(n_records / 2.3))
    sw = _SW / _SW.sum()
    sur = np.array(SURNAMES)[rng.choice(len(SURNAMES), n_people, p=sw)]
    # given names: one or two characters; a common-name pool makes namesakes (张伟, 王芳)
    one = rng.random(n_people) < 0.35
    g1 = np.array(GIVEN_CHARS)[rng.integers(0, len(GIVEN_CHARS), n_people)]
    g2 = np.array(GIVEN_CHARS)[rng.integers(0, len(GIVEN_CHARS), n_people)]
    given = np.where(one, g1, np.char.add(g1.astype(str), g2.astype(str))).astype(object)
    region_i = rng.integers(0, len(REGIONS), n_people)
    region_code = np.array([REGIONS[i][3] for i in region_i])
    ids, gender = _rid(rng, n_people, region_code)
    mobile = _mobiles(rng, n_people)
    new_mobile = np.where(rng.random(n_people) < 0.08, _mobiles(rng, n_people), None)
    email = np.where(rng.random(n_people) < 0.25,
                     np.array([f"u{i}{rng.integers(10, 99)}@{['qq.com', '163.com', '126.com', 'sina.com'][i % 4]}"
                               for i in range(n_people)], dtype=object), None)
    addr = np.array([f"{REGIONS[r][0]}{REGIONS[r][1]}{REGIONS[r][2]}{ROADS[a]}路{b}号{c}栋{d}室"
                     for r, a, b, c, d in zip(region_i, rng.integers(0, len(ROADS), n_people),
                                              rng.integers(1, 999, n_people), rng.integers(1, 30, n_people),
                                              rng.integers(101, 2999, n_people))], dtype=object)
    # households: ~20% of people live with one to three others, sharing the address and often a phone
    household = np.arange(n_people)
    hh_members = rng.random(n_people) < 0.20
    idx = np.flatnonzero(hh_members)
    rng.shuffle(idx)
    shared_phone = np.full(n_people, None, dtype=object)
    i = 0
    while i < len(idx) - 1:
        size = int(rng.integers(2, 5))
        grp = idx[i:i + size]
        head = grp[0]
        for m in grp[1:]:
            household[m] = head
            addr[m] = addr[head]
            if rng.random() < 0.6:
                sur[m] = sur[head] if rng.random() < 0.6 else sur[m]
            while sur[m] + given[m] in {sur[x] + given[x] for x in grp if x != m}:  # no namesakes at home
                given[m] = given[m] + GIVEN_CHARS[int(rng.integers(0, len(GIVEN_CHARS)))] if len(given[m]) == 1 \
                    else GIVEN_CHARS[int(rng.integers(0, len(GIVEN_CHARS)))]
            if rng.random() < 0.7:
                shared_phone[m] = mobile[head]
        i += size
    vins = make_vins(rng, int(n_people * 1.3) + 10)
    own_vin = np.array(vins[:n_people], dtype=object)
    second = rng.random(n_people) < 0.3
    own_vin2 = np.where(second, np.array(vins[n_people:n_people + n_people], dtype=object)[:n_people]
                        if len(vins) >= 2 * n_people else None, None)
    # ~4% of vehicles resold to another person: the buyer's records carry the same VIN
    resold = np.flatnonzero(rng.random(n_people) < 0.04)
    buyers = rng.integers(0, n_people, len(resold))
    later_vin = {int(b): own_vin[s] for s, b in zip(resold, buyers) if b != s}
    plates = np.array([f"粤{'ABES'[x % 4]}{rng.integers(10000, 99999)}" for x in range(n_people)], dtype=object)
    salespeople = _mobiles(rng, 25)

    sources = ["DMS", "SALES", "SERVICE", "CRM"]
    k = np.minimum(1 + rng.geometric(0.45, n_people), 8)
    person = np.repeat(np.arange(n_people), k)
    person = person[:n_records] if len(person) > n_records else person
    n = len(person)
    src = np.array(sources)[rng.choice(4, n, p=[0.25, 0.15, 0.35, 0.25])]
    u = rng.random((n, 12))
    rows = []
    for j in range(n):
        p = int(person[j])
        s = src[j]
        r = u[j]
        sn, gv = sur[p], given[p]
        name = sn + gv
        kind = "clean"
        if r[0] < 0.05:  # homophone in the given name
            c = gv[-1]
            alt = [x for x in _HOMO.get(c, c) if x != c]
            if alt:
                name = sn + gv[:-1] + alt[int(r[1] * len(alt))]
                kind = "homophone"
        elif r[0] < 0.09:
            name = "".join(TRAD.get(ch, ch) for ch in name)
            kind = "traditional"
        elif s == "CRM" and r[0] < 0.14:
            name = _pinyin_name(sn, gv, rng)
            kind = "pinyin"
        elif s in ("SERVICE", "CRM") and r[0] < 0.19:
            name = sn + ("先生" if gender[p] == "M" else "女士")
            kind = "placeholder"
        # mobile: own (old or new number), a household member's, or the salesperson's
        m = mobile[p]
        if new_mobile[p] is not None and r[2] < 0.5:
            m = new_mobile[p]
            kind = kind if kind != "clean" else "new_number"
        if shared_phone[p] is not None and r[3] < 0.5:
            m = shared_phone[p]
            kind = kind if kind != "clean" else "household_phone"
        if s == "SALES" and r[4] < 0.06:
            m = salespeople[int(r[5] * len(salespeople))]
            kind = kind if kind != "clean" else "salesperson_phone"
        mob = _fmt_mobile(rng, m) if r[6] > 0.03 else ""
        has_id = {"DMS": 0.7, "SALES": 0.92, "SERVICE": 0.15, "CRM": 0.04}[s] > r[7]
        idn = ids[p] if has_id else ""
        if idn and r[8] < 0.01:
            idn = idn[:10] + str((int(idn[10]) + 1) % 10) + idn[11:]
            kind = kind if kind != "clean" else "id_typo"
        elif idn and r[8] < 0.03:
            idn = idn.lower()
        v = own_vin[p] if r[9] < 0.6 or own_vin2[p] is None else own_vin2[p]
        if p in later_vin and r[9] > 0.7:
            v = later_vin[p]
        if s == "CRM" and r[10] < 0.7:
            v = ""
        if v and r[10] > 0.98:
            v = _vin_typo(rng, v)
            kind = kind if kind != "clean" else "vin_typo"
        plate = plates[p] if s in ("SERVICE", "DMS") and r[11] < 0.6 else ""
        rows.append((s, name, mob, idn, email[p] if (email[p] and r[11] > 0.3) else "",
                     addr[p] if s in ("DMS", "SALES") or r[1] < 0.2 else "", v, plate, f"P{p}",
                     f"H{household[p]}", kind))
    df = pd.DataFrame(rows, columns=["source", "name", "mobile", "id_number", "email", "address", "vin", "plate",
                                     "truth", "household", "kind"])
    df.insert(1, "source_id", [f"{s[0]}{i:08d}" for i, s in enumerate(df["source"])])
    df.insert(2, "customer_type", "PERSON")
    df.insert(4, "company", "")
    df.insert(6, "phone", "")
    orgs = _organisations(rng, max(1, n // 60))
    out = pd.concat([df, orgs], ignore_index=True)
    return out.sample(frac=1.0, random_state=seed).reset_index(drop=True).astype("str")


def _organisations(rng, n_orgs: int) -> pd.DataFrame:
    """Fleet customers: a company with 2-6 records, each naming one of its contact persons."""
    rows = []
    for o in range(n_orgs):
        city = REGIONS[o % len(REGIONS)][1]
        base = f"{city[:-1]}{COMPANY_WORDS[o % len(COMPANY_WORDS)]}{COMPANY_KINDS[(o // 12) % len(COMPANY_KINDS)]}{o}"
        switchboard = f"020-{8000_0000 + o:08d}"
        contacts = [(SURNAMES[rng.integers(0, 30)] + GIVEN_CHARS[rng.integers(0, len(GIVEN_CHARS))],
                     _mobiles(rng, 1)[0]) for _ in range(3)]
        for r in range(int(rng.integers(2, 7))):
            suffix = ["有限公司", "有限责任公司", "(有限公司)", "公司", "股份有限公司"][int(rng.integers(0, 5))] \
                if rng.random() < 0.8 else "有限公司"
            cname, cmob = contacts[int(rng.integers(0, len(contacts)))]
            rows.append(("DMS" if r % 2 else "CRM", f"O{o:06d}{r}", "ORGANISATION", cname, base + suffix,
                         cmob if rng.random() < 0.6 else "", switchboard, "", "", "", "", "", f"O{o}", f"O{o}", "fleet"))
    return pd.DataFrame(rows, columns=["source", "source_id", "customer_type", "name", "company", "mobile", "phone",
                                       "id_number", "email", "address", "vin", "plate", "truth", "household",
                                       "kind"])
