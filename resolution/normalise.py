"""Vectorised normalisation of customer records for matching.

Input: a DataFrame in the resolve-file layout (``source, source_id, customer_type, name, company, mobile,
phone, id_number, email, address, vin, plate``; any column but the first two may be blank). Output: the
same rows with normalised columns and derived keys. No per-row Python loop: text goes through pandas /
pyarrow string kernels, and character-level work (Traditional to Simplified, pinyin) through
``str.translate`` with tables built once from the characters actually present.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from dealersync.schemas import checks
from dealersync.schemas.destroyed import destroyed

INPUT_COLUMNS = ["source", "source_id", "customer_type", "name", "company", "mobile", "phone", "id_number",
                 "email", "address", "vin", "plate"]

# Polyphonic characters read differently as surnames (pypinyin reads 单 dan, 曾 ceng, 解 jie ...).
SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "仇": "qiu", "朴": "piao", "查": "zha", "盖": "ge",
    "乐": "yue", "缪": "miao", "覃": "qin", "翟": "zhai", "华": "hua", "任": "ren", "员": "yun", "黑": "he",
    "宓": "mi", "秘": "bi", "隗": "wei", "召": "shao", "种": "chong", "折": "she", "尉": "yu", "繁": "po",
    "长": "zhang", "重": "chong", "沈": "shen", "薄": "bo", "万": "wan", "那": "na", "纪": "ji", "祭": "zhai",
    "句": "gou", "过": "guo", "相": "xiang", "燕": "yan", "阚": "kan", "卜": "bu", "柏": "bai", "藏": "zang",
}
COMPOUND_SURNAMES = ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "司徒", "令狐", "夏侯", "公孙", "长孙",
                     "宇文", "尉迟", "澹台", "端木", "轩辕", "西门", "南宫", "万俟", "独孤", "呼延", "闻人", "申屠"]
# pinyin of common surnames, to tell the surname of a romanised name (``WEI ZHANG``)
COMMON_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
                   "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
                   "向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌"
                   "毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦"
                   "麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩"
                   "明佘池查麻苑迟邝")
# titles that make a name a placeholder (张先生, 王女士, 李总): weak evidence, surname only
TITLES = ["先生", "女士", "小姐", "太太", "夫人", "老板", "总", "经理", "师傅", "阿姨", "老师", "大哥", "大姐", "哥", "姐",
          "叔", "老", "工", "主任", "同志"]
TITLE_GENDER = {"先生": "M", "女士": "F", "小姐": "F", "太太": "F", "夫人": "F", "大哥": "M", "大姐": "F", "哥": "M",
                "姐": "F", "叔": "M", "阿姨": "F"}
PLACEHOLDER_WORDS = ["客户", "车主", "顾客", "未知", "不详", "无名", "散客", "测试", "test", "TEST", "xxx", "XXX"]
COMPANY_SUFFIXES = ["股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团公司", "分公司", "总公司", "集团",
                    "公司", "有限", "厂", "商行", "中心", "事务所", "经营部", "门市部"]
_HAN = "\u3400-\u9fff"


# ----------------------------------------------------------------------------------- char tables

@functools.lru_cache(maxsize=1)
def _t2s_table() -> dict[int, str]:
    """Traditional and variant characters to Simplified, one character each (zhconv's dictionaries,
    which also fold variants such as 锺 -> 钟 that OpenCC's t2s keeps)."""
    from zhconv import zhconv as z
    z.getdict("zh-cn")
    table = {}
    for name in ("zh2Hans", "zh2CN"):
        for k, v in z.zhcdicts[name].items():
            if len(k) == 1 and len(v) == 1 and k != v:
                table[ord(k)] = v
    return table


_PINYIN_CACHE: dict[int, str] = {}


def _pinyin_table(chars: set[str]) -> dict[int, str]:
    """Toneless pinyin syllable + space for each Han character in ``chars`` (cached across calls)."""
    missing = [c for c in chars if ord(c) not in _PINYIN_CACHE]
    if missing:
        from pypinyin import Style, lazy_pinyin
        for c, py in zip(missing, lazy_pinyin(missing, style=Style.NORMAL, errors=lambda x: [""] * len(x))):
            _PINYIN_CACHE[ord(c)] = (py + " ") if py and py.isascii() else ""
    return _PINYIN_CACHE


def _chars(s: pd.Series) -> set[str]:
    vals = s.dropna().unique()
    return set("".join(vals)) if len(vals) else set()


# ----------------------------------------------------------------------------------- names

def _blank(s: pd.Series) -> pd.Series:
    return s.mask(s == "")


def normalise_names(name: pd.Series) -> pd.DataFrame:
    """Columns: ``name_norm`` (Simplified, no spaces for Han names, lower-case for Latin names),
    ``name_placeholder`` (张先生, 客户, blank...), ``surname`` (Han), ``surname_py``, ``name_py`` (full
    pinyin, surname first, no spaces), ``name_key`` (order-free pinyin key: the surname and the given
    name sorted, so ``张伟``, ``Zhang Wei`` and ``WEI ZHANG`` agree), ``title_gender``."""
    s = checks.clean_text(name.astype("str"))
    latin = s.str.fullmatch(r"[A-Za-z][A-Za-z .'\-]*", na=False)
    han = s.str.contains(f"[{_HAN}]", regex=True, na=False)
    # Han names: drop spaces and dots (张 伟, 买买提·艾力), fold Traditional/variants
    h = s.where(han).str.replace(r"[\s·•.]", "", regex=True).str.translate(_t2s_table())
    lat = s.where(latin & ~han).str.lower().str.replace(r"[.'\-]", " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    norm = h.fillna(lat)

    words = "|".join(PLACEHOLDER_WORDS)
    titles = "|".join(sorted(TITLES, key=len, reverse=True))
    titled = h.str.extract(f"^([{_HAN}]{{1,2}}?)({titles})$")
    is_title = titled[0].notna() & h.notna()
    placeholder = (norm.isna() | norm.str.contains(f"^(?:{words})", regex=True, na=False)
                   | is_title | norm.str.fullmatch(f"[{_HAN}]", na=False))

    # surname: a compound surname, else the first character; for titles, what precedes the title
    compound = h.str.slice(0, 2)
    surname = h.str.slice(0, 1).where(~compound.isin(COMPOUND_SURNAMES), compound)
    surname = surname.where(~is_title, titled[0])
    surname = surname.where(~norm.str.contains(f"^(?:{words})", regex=True, na=False))
    has_given = h.notna() & ~is_title
    given = _strip_prefix(h.where(has_given), surname)

    table = _pinyin_table(_chars(h))
    surname_py = surname.map(SURNAME_READINGS).where(surname.isin(list(SURNAME_READINGS)))
    surname_py = surname_py.fillna(surname.str.translate(table).str.replace(" ", "", regex=False))
    given_py = given.str.translate(table).str.replace(" ", "", regex=False)

    # Latin names: find the surname token (first or last) among common surnames' pinyin
    first = lat.str.extract(r"^(\S+)")[0]
    last = lat.str.extract(r"(\S+)$")[0]
    rest_after_first = lat.str.replace(r"^\S+\s*", "", regex=True).str.replace(" ", "", regex=False)
    rest_before_last = lat.str.replace(r"\s*\S+$", "", regex=True).str.replace(" ", "", regex=False)
    sur_py_set = _surname_pinyins()
    first_is = first.isin(list(sur_py_set)) & (rest_after_first != "")
    last_is = last.isin(list(sur_py_set)) & (rest_before_last != "") & ~first_is
    lat_sur = first.where(first_is).fillna(last.where(last_is))
    lat_given = rest_after_first.where(first_is).fillna(rest_before_last.where(last_is))

    sur_all = surname_py.fillna(lat_sur)
    given_all = given_py.where(h.notna()).fillna(lat_given)
    name_py = (sur_all + given_all).where(sur_all.notna() & given_all.notna())
    name_py = name_py.fillna(lat.str.replace(" ", "", regex=False))
    # order-free key: sorted [surname, given]; Latin names with no known surname: sorted tokens
    a, b = sur_all.fillna(""), given_all.fillna("")
    key = (a.where(a <= b, b) + " " + b.where(a <= b, a)).where(sur_all.notna() & given_all.notna())
    # no known surname: the tokens in sorted order (two tokens vectorised; longer names are rare)
    two = lat.str.fullmatch(r"\S+ \S+", na=False)
    f1, l1 = first.where(two), last.where(two)
    lat_sorted = (f1.where(f1 <= l1, l1) + " " + l1.where(f1 <= l1, f1)).where(two)
    many = lat.notna() & ~two
    if many.any():
        lat_sorted[many] = [" ".join(sorted(t.split(" "))) for t in lat[many]]
    key = key.fillna(lat_sorted.astype("str"))
    placeholder = placeholder.fillna(True).astype(bool)
    return pd.DataFrame({
        "name_norm": _blank(norm), "name_placeholder": placeholder,
        "surname": _blank(surname), "surname_py": _blank(sur_all),
        "name_py": _blank(name_py).where(~placeholder),
        "given_py": _blank(given_all).where(~placeholder),
        "name_key": _blank(key).where(~placeholder),
        "title_gender": titled[1].map(TITLE_GENDER).astype("str"),
    }, index=name.index)


@functools.lru_cache(maxsize=1)
def _surname_pinyins() -> frozenset[str]:
    table = _pinyin_table(set(COMMON_SURNAMES))
    return frozenset({table[ord(c)].strip() for c in COMMON_SURNAMES} | set(SURNAME_READINGS.values()))


def _strip_prefix(s: pd.Series, prefix: pd.Series) -> pd.Series:
    """s without its leading prefix (a string Series, or prefix lengths). Vectorised: one slice per
    distinct length."""
    n = prefix if prefix.dtype.kind in "iu" else prefix.str.len().fillna(0).astype(int)
    out = s.copy()
    for k in np.unique(n.to_numpy()):
        m = (n == k) & s.notna()
        if m.any():
            out[m] = s[m].str.slice(int(k))
    return _blank(out)


# ----------------------------------------------------------------------------------- contacts, ids

def normalise_mobiles(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(11-digit mobile or NA, reason for a non-blank value that is not one)."""
    c = checks.clean_text(s.astype("str"))
    m = checks.normalise_mobile(c)
    ok = checks.is_cn_mobile(m)
    reason = pd.Series(np.where(c.notna() & ~ok, "MOBILE_INVALID", None), index=s.index, dtype="str")
    return m.where(ok), reason


def normalise_phones(s: pd.Series) -> pd.Series:
    c = checks.clean_text(s.astype("str"))
    p = checks.normalise_phone(c)
    return p.where(checks.is_cn_phone(p))


def normalise_ids(s: pd.Series) -> pd.DataFrame:
    """Resident IDs (check digit, upper-case X; birth date and gender derived) and company credit
    codes. ``id_valid`` holds only check-digit-valid numbers; ``id_raw`` keeps the normalised text of
    invalid ones too, for one-typo comparison."""
    c = checks.clean_text(s.astype("str"))
    n = checks.normalise_id_number(c)
    n = n.mask(destroyed(n, "id_number"))      # Excel-destroyed and placeholder IDs are no evidence
    rid = checks.resident_id_ok(n)
    uscc = checks.uscc_ok(n)
    valid = n.where(rid | uscc)
    birth = n.where(rid).str.slice(6, 14)
    gender_digit = pd.to_numeric(n.where(rid).str.slice(16, 17), errors="coerce")
    gender = pd.Series(np.where(gender_digit.isna(), None, np.where(gender_digit % 2 == 1, "M", "F")),
                       index=s.index, dtype="str")
    kind = pd.Series(np.where(rid, "RESIDENT_ID", np.where(uscc, "USCC", None)), index=s.index, dtype="str")
    reason = pd.Series(np.where(n.notna() & ~(rid | uscc), "ID_INVALID", None), index=s.index, dtype="str")
    return pd.DataFrame({"id_valid": valid, "id_raw": n.where(n.str.len() >= 15), "id_kind": kind,
                         "birth": birth, "id_gender": gender, "id_reason": reason}, index=s.index)


def normalise_vins(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(upper-case 17-character VIN or NA, whether its check digit holds)."""
    v = checks.normalise_vin(checks.clean_text(s.astype("str")))
    v = v.where(v.str.len() == 17)
    v = v.mask(destroyed(v, "vin"))
    return v, checks.is_vin(v)


def normalise_plates(s: pd.Series) -> pd.Series:
    p = checks.normalise_plate(checks.clean_text(s.astype("str")).str.translate(_t2s_table()))
    return p.where(p.str.len().between(7, 8))


def normalise_emails(s: pd.Series) -> pd.Series:
    e = checks.normalise_email(checks.clean_text(s.astype("str")))
    return e.where(checks.is_email(e) & ~destroyed(e, "email"))


_PROV = r"(?P<province>[^省市区县]{2,7}?(?:省|自治区|特别行政区)|北京市?|上海市?|天津市?|重庆市?)?"
_CITY = r"(?P<city>[^省市区县]{1,9}?(?:市|自治州|盟|地区))?"
_DIST = r"(?P<district>[^省市区县]{1,9}?(?:区|县|市|旗))?"


def normalise_addresses(s: pd.Series) -> pd.DataFrame:
    """Province / city / district where present, and a comparison key (Simplified, no spaces or
    punctuation, without the province and city prefix, which sources include or leave out)."""
    a = checks.clean_text(s.astype("str")).str.translate(_t2s_table())
    a = a.str.replace(r"[\s,，。.、#()（）\-]", "", regex=True)
    parts = a.str.extract(f"^{_PROV}{_CITY}{_DIST}")
    # the extracted parts are a prefix of the address: cut them by length (grouped, no row loop)
    cut = parts["province"].str.len().fillna(0) + parts["city"].str.len().fillna(0)
    key = _blank(_strip_prefix(a, cut.astype(int)))
    return pd.DataFrame({"province": _blank(parts["province"].astype("str")), "city": _blank(parts["city"].astype("str")),
                         "district": _blank(parts["district"].astype("str")),
                         "address_key": key.where(key.str.len() >= 4)}, index=s.index)


def buildings(address_key: pd.Series) -> pd.DataFrame:
    """``building`` (estate + building number: ``锦绣家园17``, which sources spell with or without the
    road, the district and the room) and ``room``, from ``address_key``: the Han run before the
    building number, cut after its last road / town / number word."""
    a = address_key.astype("str")
    bld = a.str.extract(f"([{_HAN}]{{2,16}})([0-9]{{1,3}})(?:栋|幢|座|号楼)([0-9]{{1,5}})?")
    estate = bld[0].str.replace("^.*[号路街道镇区市县省乡村巷]", "", regex=True)
    building = (estate + bld[1]).where(estate.str.len() >= 2)
    return pd.DataFrame({"building": _blank(building.astype("str")),
                         "room": _blank(bld[2].where(building.notna()).astype("str"))}, index=a.index)


def normalise_companies(s: pd.Series) -> pd.Series:
    """Company names: NFKC, Simplified, brackets and spaces removed, legal-form suffixes such as
    有限公司 stripped (repeatedly: 集团有限公司, 分公司)."""
    c = checks.clean_text(s.astype("str")).str.translate(_t2s_table())
    c = c.str.replace(r"[\s()（）【】\[\]·,，.]", "", regex=True).str.upper()
    suffix = "(?:" + "|".join(COMPANY_SUFFIXES) + ")+$"
    c = c.str.replace(suffix, "", regex=True)
    return _blank(c.where(c.str.len() >= 2))


# ----------------------------------------------------------------------------------- all at once

def normalise_records(df: pd.DataFrame) -> pd.DataFrame:
    """The matching view of a batch of records (index preserved)."""
    df = df.copy()
    for c in INPUT_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
        df[c] = df[c].astype("str")
    ctype = checks.clean_text(df["customer_type"]).str.upper()
    company = normalise_companies(df["company"])
    ctype = ctype.where(ctype.isin(["PERSON", "ORGANISATION"]))
    ctype = ctype.fillna(pd.Series(np.where(company.notna() & df["name"].isna(), "ORGANISATION", "PERSON"),
                                   index=df.index, dtype="str"))
    names = normalise_names(df["name"])
    mobile, mobile_reason = normalise_mobiles(df["mobile"])
    phone = normalise_phones(df["phone"])
    # a "phone" that is a mobile counts as a second mobile
    mobile2 = phone.where(checks.is_cn_mobile(phone))
    ids = normalise_ids(df["id_number"])
    vin, vin_ok = normalise_vins(df["vin"])
    addr = normalise_addresses(df["address"])
    # the gender from the resident ID only: clerks write 先生 / 小姐 for whoever answers (field case G07)
    gender = ids["id_gender"]
    out = pd.DataFrame({
        "source": df["source"], "source_id": df["source_id"], "customer_type": ctype,
        **{c: names[c] for c in ["name_norm", "name_placeholder", "surname", "surname_py", "name_py", "given_py",
                                     "name_key"]},
        "company_key": company, "mobile": mobile, "mobile2": mobile2.where(mobile2 != mobile), "phone": phone,
        **{c: ids[c] for c in ["id_valid", "id_raw", "id_kind", "birth"]}, "gender": gender,
        "email": normalise_emails(df["email"]), **{c: addr[c] for c in addr.columns},
        "vin": vin, "vin_ok": vin_ok, "plate": normalise_plates(df["plate"]),
        "mobile_reason": mobile_reason, "id_reason": ids["id_reason"],
    }, index=df.index)
    return out


def derived(norm: pd.DataFrame) -> pd.DataFrame:
    """Columns the matcher derives from the stored normalised ones at load time (records normalised by
    an earlier model version included): ``building`` and ``room``; destroyed and placeholder
    identifiers blanked (``schemas.destroyed``)."""
    out = norm.copy()
    for col, kind in (("id_raw", "id_number"), ("id_valid", "id_number"), ("mobile", "mobile"),
                      ("mobile2", "mobile"), ("email", "email"), ("vin", "vin")):
        if col in out:
            v = out[col].astype("str")
            out[col] = v.mask(destroyed(v, kind))
    if "address_key" in out:
        out[["building", "room"]] = buildings(out["address_key"])
    return out
