"""Table-driven tests of the matching normalisers."""
from __future__ import annotations

import pandas as pd
import pytest

from dealersync.resolution.normalise import (normalise_addresses, normalise_companies, normalise_emails, normalise_ids,
                                  normalise_mobiles, normalise_names, normalise_plates, normalise_records,
                                  normalise_vins)


def _one(fn, value):
    return fn(pd.Series([value], dtype="str"))


@pytest.mark.parametrize("left,right", [
    ("张伟", "張偉"),            # Traditional
    ("张伟", "Zhang Wei"),       # romanised, surname first
    ("张伟", "WEI ZHANG"),       # romanised, given name first, upper case
    ("张伟", "张玮"),            # homophone typo
    ("张伟", " 张 伟 "),          # spaces
    ("钟汉良", "锺漢良"),         # variant character 锺 folded by zhconv
    ("张晓明", "Xiaoming Zhang"),
    ("李娜", "ＬＩ ＮＡ"),         # full-width letters
    ("欧阳娜娜", "Ouyang Nana"),  # compound surname
])
def test_same_person_names_share_the_pinyin_key(left, right):
    n = normalise_names(pd.Series([left, right], dtype="str"))
    assert n["name_key"].iloc[0] == n["name_key"].iloc[1]
    assert not n["name_placeholder"].any()


@pytest.mark.parametrize("left,right", [("张伟", "张卫东"), ("王芳", "汪芳华"), ("李娜", "李明")])
def test_different_names_have_different_keys(left, right):
    n = normalise_names(pd.Series([left, right], dtype="str"))
    assert n["name_key"].iloc[0] != n["name_key"].iloc[1]


@pytest.mark.parametrize("name,placeholder,surname,gender", [
    ("张先生", True, "张", "M"), ("王女士", True, "王", "F"), ("李总", True, "李", None),
    ("欧阳小姐", True, "欧阳", "F"), ("客户", True, None, None), ("", True, None, None),
    ("张伟", False, "张", None), ("张", True, "张", None),
])
def test_placeholders_are_weak_evidence_with_a_surname(name, placeholder, surname, gender):
    n = normalise_names(pd.Series([name], dtype="str")).iloc[0]
    assert bool(n["name_placeholder"]) is placeholder
    assert (None if pd.isna(n["surname"]) else n["surname"]) == surname
    assert (None if pd.isna(n["title_gender"]) else n["title_gender"]) == gender
    if placeholder:
        assert pd.isna(n["name_key"])


@pytest.mark.parametrize("name,surname_py", [("单雄信", "shan"), ("曾国藩", "zeng"), ("解缙", "xie"),
                                             ("区永康", "ou"), ("仇英", "qiu"), ("张伟", "zhang")])
def test_polyphonic_surnames_read_as_surnames(name, surname_py):
    assert normalise_names(pd.Series([name], dtype="str"))["surname_py"].iloc[0] == surname_py


@pytest.mark.parametrize("raw,mobile,reason", [
    ("+86 138-1234-5678", "13812345678", None), ("8613812345678", "13812345678", None),
    ("0086 13812345678", "13812345678", None), ("138 1234 5678", "13812345678", None),
    ("13812345678", "13812345678", None), ("1381234567", None, "MOBILE_INVALID"),
    ("12812345678", None, "MOBILE_INVALID"), ("", None, None), ("无", None, None),
])
def test_mobiles(raw, mobile, reason):
    m, r = _one(normalise_mobiles, raw)
    assert (None if pd.isna(m.iloc[0]) else m.iloc[0]) == mobile
    assert (None if pd.isna(r.iloc[0]) else r.iloc[0]) == reason


@pytest.mark.parametrize("raw,valid,birth,gender", [
    ("11010519491231002X", "11010519491231002X", "19491231", "F"),
    ("11010519491231002x", "11010519491231002X", "19491231", "F"),   # lower-case x
    ("110105194912310021", None, None, None),                          # check digit wrong
    ("440106199905128339", None, None, None),
    ("91350100M000100Y43", "91350100M000100Y43", None, None),          # a company credit code
])
def test_ids(raw, valid, birth, gender):
    r = _one(normalise_ids, raw).iloc[0]
    assert (None if pd.isna(r["id_valid"]) else r["id_valid"]) == valid
    assert (None if pd.isna(r["birth"]) else r["birth"]) == birth
    assert (None if pd.isna(r["id_gender"]) else r["id_gender"]) == gender
    if valid is None:
        assert r["id_reason"] == "ID_INVALID" and r["id_raw"] == raw.upper()


@pytest.mark.parametrize("raw,vin,ok", [("1m8gdm9axkp042788", "1M8GDM9AXKP042788", True),
                                        ("1M8GDM9A1KP042788", "1M8GDM9A1KP042788", False),
                                        ("LSVAG2180", None, False)])
def test_vins(raw, vin, ok):
    v, good = _one(normalise_vins, raw)
    assert (None if pd.isna(v.iloc[0]) else v.iloc[0]) == vin and bool(good.iloc[0]) is ok


@pytest.mark.parametrize("fn,raw,out", [
    (normalise_plates, "粤a 12345", "粤A12345"), (normalise_plates, "粤A·D12345", "粤AD12345"),
    (normalise_emails, " Zhang.Wei@QQ.com ", "zhang.wei@qq.com"), (normalise_emails, "not-an-email", None),
    (normalise_companies, "广州恒通物流有限公司", "广州恒通物流"),
    (normalise_companies, "广州恒通物流(有限公司)", "广州恒通物流"),
    (normalise_companies, "广州恒通物流股份有限公司", "广州恒通物流"),
    (normalise_companies, "广州 恒通物流 集团有限公司", "广州恒通物流"),
])
def test_plates_emails_companies(fn, raw, out):
    v = _one(fn, raw).iloc[0]
    assert (None if pd.isna(v) else v) == out


@pytest.mark.parametrize("raw,province,city,district", [
    ("广东省广州市天河区中山路1号", "广东省", "广州市", "天河区"),
    ("广州市海珠区解放路240号", None, "广州市", "海珠区"),
    ("北京市朝阳区建国路88号", "北京市", None, "朝阳区"),
    ("湖南省长沙市岳麓区学府路9号", "湖南省", "长沙市", "岳麓区"),
])
def test_addresses(raw, province, city, district):
    r = _one(normalise_addresses, raw).iloc[0]
    got = tuple(None if pd.isna(r[c]) else r[c] for c in ("province", "city", "district"))
    assert got == (province, city, district)


def test_address_key_ignores_the_province_and_city_prefix():
    a = normalise_addresses(pd.Series(["广东省广州市天河区中山路1号", "天河区中山路1号", "广州市天河区 中山路1号"], dtype="str"))
    assert a["address_key"].nunique() == 1


def test_records_phone_that_is_a_mobile_counts_as_a_second_mobile():
    df = pd.DataFrame({"source": ["A"], "source_id": ["1"], "name": ["张伟"], "mobile": ["13812345678"],
                       "phone": ["+86 139 0000 1111"]})
    r = normalise_records(df).iloc[0]
    assert r["mobile"] == "13812345678" and r["mobile2"] == "13900001111"
    assert r["customer_type"] == "PERSON"
