"""The matching models: ``DEALER`` for dealer customer records (persons and organisations), and
``FEBRL`` for the FEBRL benchmark's person records (a generic threshold model).

Precision first. A dealer pair is merged only on identity evidence with no conflict:
- the resident ID agreeing (exactly or within one typo) and the names not disagreeing; or
- the names agreeing (same characters, or same pinyin: homophones, Traditional, romanised in any
  order) and at least one non-shared contact or vehicle agreeing (mobile, e-mail, VIN within a typo,
  plate, address); a close name (same surname, similar pinyin) needs two of them; or
- a placeholder (张先生) agreeing on the surname with both the VIN and a non-shared mobile.
Whole masters are then compared too (``engine.join_on_cluster_evidence``): the evidence of all their
record pairs added up, so a nameless master joins on two strong identifiers though no one record
shares both, and a placeholder of the same surname on a mobile no other name uses joins if no
identifier disagrees.
A conflict (two different IDs, different genders, different names) forbids a merge. Shared contact
details with different names make a HOUSEHOLD link, never a merge. Pairs scoring high without
identity evidence go to REVIEW. A mobile used by many different names (a salesperson's own phone, a
switchboard) is "shared" and identifies nobody.
"""
from __future__ import annotations

import functools

import numpy as np

from . import defaults

from .engine import (EV_ADDRESS, EV_EMAIL, EV_ID, EV_MOBILE, EV_OWN_MOBILE, EV_PLATE, EV_VIN, EV_VIN_TYPO, HOUSEHOLD,
                     MERGE, NONE, REVIEW, Comparison, Model, Scored)

MODEL_VERSION = "dealer-3"
SHARED_MOBILE_NAMES = 5   # a mobile seen with this many different (non-placeholder) names identifies nobody

_SURNAME_OK = ("(l.surname_py = r.surname_py OR list_contains(string_split(coalesce(l.name_key, ''), ' '), r.surname_py) "
               "OR list_contains(string_split(coalesce(r.name_key, ''), ' '), l.surname_py))")
_PLACEHOLDER_ANY = "(l.name_placeholder OR r.name_placeholder)"


def _mobile_agree(flag: str) -> str:
    """A mobile of l equal to one of r's, with l's flag for it (``NOT shared``, ``own``, ``shared``)."""
    f1, f2 = (f"NOT l.mobile_shared", f"NOT l.mobile2_shared") if flag == "not_shared" else (
        f"l.mobile_{flag}", f"l.mobile2_{flag}")
    return (f"((l.mobile = r.mobile AND {f1}) OR (l.mobile = r.mobile2 AND {f1}) "
            f"OR (l.mobile2 = r.mobile AND {f2}) OR (l.mobile2 = r.mobile2 AND {f2}))")


DEALER_COMPARISONS = [
    Comparison("name", [
        ("exact", "l.name_norm = r.name_norm AND NOT l.name_placeholder AND NOT r.name_placeholder"),
        ("pinyin", "l.name_key = r.name_key"),
        ("close", f"NOT {_PLACEHOLDER_ANY} AND {_SURNAME_OK} AND (jaro_winkler_similarity(l.given_py, r.given_py) >= 0.9 "
                  "OR (l.surname = r.surname AND length(l.name_norm) = length(r.name_norm) AND length(l.name_norm) >= 3 "
                  "AND levenshtein(l.name_norm, r.name_norm) = 1))"),
        ("surname", f"{_PLACEHOLDER_ANY} AND {_SURNAME_OK}"),
        ("same_surname", _SURNAME_OK),          # two full names, one surname, another given name
    ], missing="l.customer_type = 'ORGANISATION' OR l.name_norm IS NULL OR r.name_norm IS NULL "
               "OR (l.name_placeholder AND l.surname_py IS NULL) OR (r.name_placeholder AND r.surname_py IS NULL)",
        tf_column="name_norm", m_start=[0.7, 0.15, 0.05, 0.05, 0.02, 0.03]),
    # own: the mobile is seen with one full name at most in the batch; agree: with a household's few
    Comparison("mobile", [("own", _mobile_agree("own")), ("agree", _mobile_agree("not_shared")),
                          ("agree_shared", _mobile_agree("shared"))],
               missing="coalesce(l.mobile, l.mobile2) IS NULL OR coalesce(r.mobile, r.mobile2) IS NULL",
               m_start=[0.7, 0.1, 0.02, 0.18]),
    Comparison("id", [("exact", "l.id_raw = r.id_raw"),
                      ("typo", "(l.id_valid IS NULL OR r.id_valid IS NULL) AND damerau_levenshtein(l.id_raw, r.id_raw) <= 1"),
                      ("conflict", "l.id_valid IS NOT NULL AND r.id_valid IS NOT NULL")],
               missing="l.id_raw IS NULL OR r.id_raw IS NULL", m_start=[0.95, 0.03, 0.01, 0.01]),
    Comparison("vin", [("exact", "l.vin = r.vin"), ("typo", "hamming(l.vin, r.vin) <= 1")],
               missing="l.vin IS NULL OR r.vin IS NULL", m_start=[0.6, 0.02, 0.38]),
    Comparison("plate", [("exact", "l.plate = r.plate")], missing="l.plate IS NULL OR r.plate IS NULL",
               m_start=[0.7, 0.3]),
    Comparison("email", [("exact", "l.email = r.email")], missing="l.email IS NULL OR r.email IS NULL",
               m_start=[0.9, 0.1]),
    Comparison("address", [("exact", "l.address_key = r.address_key"),
                           ("close", "l.district = r.district AND jaro_winkler_similarity(l.address_key, r.address_key) >= 0.92"),
                           ("building", "l.building = r.building AND (l.room IS NULL OR r.room IS NULL OR l.room = r.room)")],
               missing="l.address_key IS NULL OR r.address_key IS NULL", m_start=[0.6, 0.1, 0.15, 0.15]),
    Comparison("gender", [("agree", "l.gender = r.gender")], missing="l.gender IS NULL OR r.gender IS NULL",
               m_start=[0.99, 0.01]),
    Comparison("company", [("exact", "l.company_key = r.company_key"),
                           ("close", "jaro_winkler_similarity(l.company_key, r.company_key) >= 0.93")],
               missing="l.company_key IS NULL OR r.company_key IS NULL", m_start=[0.85, 0.1, 0.05]),
    Comparison("phone", [("exact", "l.phone = r.phone")], missing="l.phone IS NULL OR r.phone IS NULL",
               m_start=[0.7, 0.3]),
]

DEALER_BLOCKING = [
    ("mobile", "unnest([mobile, mobile2])", 50),
    ("id", "id_raw", 20),
    ("id_a", "substr(id_raw, 1, 6) || substr(id_raw, 15, 4)", 30),
    ("id_b", "substr(id_raw, 7, 12)", 30),
    ("id_c", "substr(id_raw, 1, 14)", 30),
    ("vin", "vin", 20),
    ("vin_serial", "substr(vin, 10, 8)", 20),
    ("vin_name", "name_key || '|' || substr(vin, 1, 9)", 30),
    ("email", "email", 20),
    ("plate", "plate", 20),
    ("name_building", "name_key || '|' || building", 20),
    ("name_district", "name_key || '|' || district", 50),
    ("name_address", "name_key || '|' || address_key", 20),
    ("company", "company_key", 200),
    ("phone", "CASE WHEN customer_type = 'ORGANISATION' THEN phone END", 200),
]


def decide_dealer(s: Scored) -> np.ndarray:
    """MERGE / REVIEW / HOUSEHOLD / NONE per pair (and the count of agreeing strong identifiers in
    ``pairs["evidence"]``), from evidence (the weight only orders merges and
    sends strong-scoring leftovers to review), so a pair is decided the same way in a file of two
    rows and in one of millions. Strong identifiers: a mobile not shared beyond a household, the VIN,
    the plate, the e-mail, the resident ID (destroyed and placeholder values are blank by then)."""
    name_strong = s.level("name", "exact", "pinyin")
    name_exact = s.level("name", "exact")            # the same characters: a homophone (方宇 / 方玉) is not
    name_close = s.level("name", "close")
    name_weak = s.level("name", "surname")          # a placeholder (张先生) agreeing on the surname
    name_sur = s.level("name", "same_surname")     # a typo in a two-character name, or a relative
    name_conflict = s.level("name", "else")
    name_missing = s.missing("name")
    id_exact = s.level("id", "exact")
    id_agree = s.level("id", "exact", "typo")
    id_conflict = s.level("id", "conflict")
    gender_conflict = s.level("gender", "else")
    mob = s.level("mobile", "own", "agree")
    vin_exact = s.level("vin", "exact")
    vin = s.level("vin", "exact", "typo")
    plate = s.level("plate", "exact")
    email = s.level("email", "exact")
    # the same address or estate building; a merely similar one (人民路153号19栋 / 人民路353号12栋) is no evidence
    address = s.level("address", "exact", "building")
    address_exact = s.level("address", "exact")
    strong = mob.astype(int) + vin_exact + plate + email + id_exact
    personal = strong - mob                          # identifiers a household does not share
    company = s.level("company", "exact")
    company_close = s.level("company", "close")
    org = s.missing("name") & ~(s.pairs["company"].to_numpy() == -1)  # organisation pairs compare companies
    conflict = name_conflict | id_conflict | gender_conflict
    no_name = name_missing | name_weak
    identity = ((id_agree & (name_strong | name_close | name_weak))
                | (name_exact & ((strong + (vin & ~vin_exact) + address) >= 1))
                | (name_strong & ((strong + (vin & ~vin_exact)) >= 1))
                | (name_close & (strong >= 2))
                | (no_name & (strong >= 2))
                | (no_name & (personal >= 1) & address_exact)
                | (name_sur & (strong >= 2) & (personal >= 1)))
    org_identity = (company | (company_close & (s.level("phone", "exact") | mob))) & ~id_conflict
    w = s.pairs["weight"].to_numpy()
    person_merge = ~org & ~conflict & identity
    org_merge = org & org_identity
    merge = person_merge | org_merge
    review = ~merge & ~org & ~conflict & (((no_name | name_close) & (strong >= 1)) | (name_sur & (personal >= 1)) | ((name_strong | name_close) & ((strong >= 1) | address | vin) & (w >= s.model.review_weight)))
    s.pairs["evidence"] = strong.astype(np.int8)
    # which identifiers agree, whether the pair conflicts and how the names relate: the clustering adds
    # them up over whole masters (``engine.join_on_cluster_evidence``)
    own = s.level("mobile", "own")
    s.pairs["evidence_mask"] = (mob * EV_MOBILE + vin_exact * EV_VIN + plate * EV_PLATE + email * EV_EMAIL
                                + id_exact * EV_ID + own * EV_OWN_MOBILE + address_exact * EV_ADDRESS
                                + (vin & ~vin_exact) * EV_VIN_TYPO).astype(np.int16)
    s.pairs["conflict"] = conflict
    s.pairs["name_rel"] = np.select([name_strong, name_close, name_weak], [3, 2, 1], 0).astype(np.int8)
    household = ~merge & ~review & (name_conflict | name_sur) & (mob | s.level("address", "exact", "building")
                                                    | s.level("mobile", "agree_shared"))
    out = np.full(len(w), NONE, dtype=object)
    out[household] = HOUSEHOLD
    out[review] = REVIEW
    out[merge] = MERGE
    return out


DEALER = Model("dealer", MODEL_VERSION, DEALER_BLOCKING, DEALER_COMPARISONS, decide_dealer,
               merge_weight=4.0, review_weight=8.0, where="l.customer_type = r.customer_type",
               defaults=functools.partial(defaults.load, MODEL_VERSION))


# ------------------------------------------------------------------------------------ FEBRL

FEBRL_COMPARISONS = [
    Comparison("given_name", [("exact", "l.given_name = r.given_name"),
                              ("jw95", "jaro_winkler_similarity(l.given_name, r.given_name) >= 0.95"),
                              ("jw88", "jaro_winkler_similarity(l.given_name, r.given_name) >= 0.88")],
               missing="l.given_name IS NULL OR r.given_name IS NULL", tf_column="given_name"),
    Comparison("surname", [("exact", "l.surname = r.surname"),
                           ("jw95", "jaro_winkler_similarity(l.surname, r.surname) >= 0.95"),
                           ("jw88", "jaro_winkler_similarity(l.surname, r.surname) >= 0.88")],
               missing="l.surname IS NULL OR r.surname IS NULL", tf_column="surname"),
    Comparison("dob", [("exact", "l.date_of_birth = r.date_of_birth"),
                       ("lev1", "damerau_levenshtein(l.date_of_birth, r.date_of_birth) <= 1"),
                       ("lev2", "damerau_levenshtein(l.date_of_birth, r.date_of_birth) <= 2")],
               missing="l.date_of_birth IS NULL OR r.date_of_birth IS NULL"),
    Comparison("soc_sec_id", [("exact", "l.soc_sec_id = r.soc_sec_id"),
                              ("lev1", "damerau_levenshtein(l.soc_sec_id, r.soc_sec_id) <= 1"),
                              ("lev2", "damerau_levenshtein(l.soc_sec_id, r.soc_sec_id) <= 2")],
               missing="l.soc_sec_id IS NULL OR r.soc_sec_id IS NULL"),
    Comparison("street_number", [("exact", "l.street_number = r.street_number")],
               missing="l.street_number IS NULL OR r.street_number IS NULL"),
    Comparison("address_1", [("exact", "l.address_1 = r.address_1"),
                             ("jw90", "jaro_winkler_similarity(l.address_1, r.address_1) >= 0.9")],
               missing="l.address_1 IS NULL OR r.address_1 IS NULL"),
    Comparison("suburb", [("exact", "l.suburb = r.suburb"),
                          ("jw90", "jaro_winkler_similarity(l.suburb, r.suburb) >= 0.9")],
               missing="l.suburb IS NULL OR r.suburb IS NULL"),
    Comparison("postcode", [("exact", "l.postcode = r.postcode"),
                            ("lev1", "damerau_levenshtein(l.postcode, r.postcode) <= 1")],
               missing="l.postcode IS NULL OR r.postcode IS NULL"),
    Comparison("state", [("exact", "l.state = r.state")], missing="l.state IS NULL OR r.state IS NULL"),
]
FEBRL_BLOCKING = [
    ("ssid", "soc_sec_id", 50), ("dob", "date_of_birth", 50), ("names", "given_name || '|' || surname", 50),
    ("sur_pc", "surname || '|' || postcode", 50), ("given_dob", "given_name || '|' || substr(date_of_birth, 1, 4)", 50),
    ("addr", "address_1 || '|' || postcode", 50), ("sur_dob", "surname || '|' || date_of_birth", 50),
    ("ssid_pc", "substr(soc_sec_id, 1, 4) || '|' || postcode", 50),
]


def decide_threshold(s: Scored) -> np.ndarray:
    w = s.pairs["weight"].to_numpy()
    out = np.full(len(w), NONE, dtype=object)
    out[w >= s.model.review_weight] = REVIEW
    out[w >= s.model.merge_weight] = MERGE
    return out


FEBRL = Model("febrl", "febrl-1", FEBRL_BLOCKING, FEBRL_COMPARISONS, decide_threshold, merge_weight=6.0,
              review_weight=2.0)
