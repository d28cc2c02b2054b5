"""The sandbox OEM portal against its contract (schemathesis) and its documented semantics."""
from __future__ import annotations

import copy
import functools
import os
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
import schemathesis

from dealersync.sandbox.portal import Clock, PortalFaults, create_app

from .server import serving

# the contract, as the repository carries it (docs/specs; a test checks it against ../shared/specs)
SPEC = Path(__file__).resolve().parents[2] / "docs" / "specs" / "oem-portal.openapi.yaml"
VIN = "1M8GDM9AXKP042788"
EXAMPLES = int(os.environ.get("DEALERSYNC_SCHEMATHESIS_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("portal") / "p.db",
                     clock=Clock(review_after=0.3, decide_after=0.6, settle_after=1.0))
    with serving(app) as url:
        yield url + "/api/v1"


def token(portal) -> dict:
    r = requests.post(portal + "/oauth/token", data={"grant_type": "client_credentials", "client_id": "dealersync",
                                                     "client_secret": "sandbox-secret"})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@functools.cache
def module_token(portal) -> dict:
    return token(portal)


schema = schemathesis.openapi.from_path(str(SPEC))
# valid and invalid requests, about 100 per operation: issue #15's two faults (a token for
# client_id=nobody without client_secret, a 500 for an object as FactorCode) hide below ~100
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
                                max_examples=EXAMPLES,
                                # CI replays the same examples every run (a landing must not depend on
                                # the draw); elsewhere each run draws new ones and keeps exploring
                                deterministic=os.environ.get("CI", "").lower() in ("1", "true", "yes"))


@pytest.mark.conformance
@schema.parametrize()
def test_conforms_to_the_contract(case, portal):
    """Status codes, headers and bodies as the contract says; never a 5xx; invalid requests refused.
    Not checked: that every schema-valid request is accepted, because the contract's business
    validation answers schema-valid claims with 422 (an all-zero VIN fails its check digit; tested below),
    nor the ``Allow`` header of a 405 (the web framework lists the methods of one route only)."""
    from schemathesis.checks import allow_header_conformance, negative_data_rejection, positive_data_acceptance
    excluded = [positive_data_acceptance, allow_header_conformance]
    if case.path != "/oauth/token":   # the sandbox takes a wrong type it does not use (known, not a leak);
        excluded.append(negative_data_rejection)   # the token endpoint must refuse every invalid request
    headers = module_token(portal) if case.path != "/oauth/token" else {}
    case.call_and_validate(base_url=portal, headers=headers, excluded_checks=excluded)


def claim(n: str, count: int = 1, causal=(True,), labor="A0101", completed: date | None = None, vin=VIN) -> dict:
    done = completed or date.today() - timedelta(days=2)
    return {"ApplicationArea": {"Sender": {"CreatorNameCode": "T", "DealerNumberID": "GZ0012"},
                                "CreationDateTime": "2026-11-20T08:00:00Z", "BODID": str(uuid.uuid4())},
            "WarrantyClaim": {"WarrantyClaimHeader": {
                "ClaimNumberString": n, "ClaimTypeString": "WARRANTY", "ClaimSubmissionCountNumeric": count,
                "RepairOrder": {"DocumentID": "RO1", "RepairOrderOpenedDate": (done - timedelta(days=1)).isoformat(),
                                "RepairOrderCompletedDate": done.isoformat()},
                "Vehicle": {"VIN": vin, "InDistanceMeasure": {"value": 12000, "unitCode": "KMT"}},
                "ClaimedAmount": {"value": 1000.0, "currencyID": "CNY"}},
                "Job": [{"JobNumberString": "1", "CodesAndComments": {"ComplaintCode": "C1", "CauseCode": "R1"},
                         "ServiceLabor": [{"LaborOperationID": labor, "LaborAllowanceHoursNumeric": 1.0}],
                         "ServiceParts": [{"ItemID": f"P{i}", "Quantity": 1, "CausalPartIndicator": c}
                                          for i, c in enumerate(causal)]}]}}


def post(portal, body, key=None, auth=None):
    return requests.post(portal + "/warranty-claims", json=body, headers={**(auth or token(portal)),
                                                                         "Idempotency-Key": key or str(uuid.uuid4())})


def test_idempotency_key_and_natural_key(portal):
    auth, body, key = token(portal), claim("WC-IDEM"), str(uuid.uuid4())
    first = post(portal, body, key, auth)
    assert first.status_code == 202 and first.json()["ClaimStatusCode"] == "SUBMITTED"
    again = post(portal, body, key, auth)
    assert again.status_code == 200 and again.json() == first.json()          # the first answer, nothing created
    other = copy.deepcopy(body)
    other["WarrantyClaim"]["WarrantyClaimHeader"]["ClaimedAmount"]["value"] = 5.0
    r = post(portal, other, key, auth)
    assert r.status_code == 409 and r.json()["Errors"][0]["ErrorCode"] == "IDEMPOTENCY_KEY_REUSED"
    dup = post(portal, body, str(uuid.uuid4()), auth)                          # same natural key, new key
    assert dup.status_code == 409 and dup.json()["Errors"][0]["ErrorCode"] == "DUPLICATE_CLAIM"
    assert dup.json()["DuplicateOf"]["OEMClaimNumberString"] == first.json()["OEMClaimNumberString"]


@pytest.mark.parametrize("body,code", [
    (claim("WC-V1", vin="1M8GDM9A1KP042788"), "INVALID_VIN"),
    (claim("WC-V2", causal=(False, False)), "MAIN_PART_MISSING"),
    (claim("WC-V3", causal=(True, True)), "MULTIPLE_MAIN_PARTS"),
    (claim("WC-V4", labor="ZZ999"), "INVALID_REFERENCE"),
    (claim("WC-V5", completed=date.today() - timedelta(days=90)), "CLAIM_WINDOW_EXPIRED"),
    (claim("WC-V6", count=2), "NOT_RESUBMITTABLE"),
])
def test_business_validation_is_422(portal, body, code):
    r = post(portal, body)
    assert r.status_code == 422 and code in [e["ErrorCode"] for e in r.json()["Errors"]]


def test_adjudication_clock_change_feed_and_status(portal):
    auth = token(portal)
    for i in range(12):
        assert post(portal, claim(f"WC-ADJ{i}"), auth=auth).status_code == 202
    time.sleep(1.3)
    seen, cursor = [], None
    while True:
        page = requests.get(portal + "/warranty-claims", params={"limit": 7, **({"cursor": cursor} if cursor else {})},
                            headers=auth).json()
        seen += [(x["ClaimNumberString"], x["ClaimStatusCode"]) for x in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    mine = [s for c, s in seen if c.startswith("WC-ADJ")]
    assert mine.count("SUBMITTED") == 12 and mine.count("UNDER_REVIEW") == 12
    finals = {s for c, s in seen if c.startswith("WC-ADJ")} - {"SUBMITTED", "UNDER_REVIEW"}
    assert finals and finals <= {"APPROVED", "PARTIALLY_APPROVED", "REJECTED", "RETURNED", "SETTLED"}
    st = requests.get(portal + "/warranty-claims/WC-ADJ0", headers=auth).json()
    assert st["ClaimStatusCode"] in finals and st["OEMStatusRaw"]
    returned = [c for c, s in seen if s == "RETURNED"]
    if returned:   # a RETURNED claim may be resubmitted with count + 1
        assert post(portal, claim(returned[0], count=2), auth=auth).status_code == 202


def test_expired_tokens_and_bad_credentials(tmp_path):
    with serving(create_app(tmp_path / "t.db", faults=PortalFaults(token_lifetime=1))) as url:
        api = url + "/api/v1"
        auth = token(api)
        time.sleep(1.2)
        r = requests.get(api + "/code-tables/labor-operations", headers=auth)
        assert r.status_code == 401 and r.json()["Errors"][0]["ErrorCode"] == "TOKEN_EXPIRED"
        bad = requests.post(api + "/oauth/token", data={"grant_type": "client_credentials", "client_id": "x",
                                                        "client_secret": "y"})
        assert bad.status_code == 401 and bad.json()["Errors"][0]["ErrorCode"] == "INVALID_CLIENT"


def test_surveys_and_reports(portal):
    auth = token(portal)
    s = {"ApplicationArea": {"Sender": {"CreatorNameCode": "T", "DealerNumberID": "GZ0012"},
                             "CreationDateTime": "2026-11-20T08:00:00Z", "BODID": str(uuid.uuid4())},
         "CustomerSurveyResult": {"DocumentID": "S1", "SurveyTypeCode": "CSI",
                                  "TriggerEvent": {"EventTypeCode": "RO_CLOSED", "DocumentID": "RO1",
                                                   "EventDateTime": "2026-11-19T08:00:00Z"},
                                  "CompletedDateTime": "2026-11-20T08:00:00Z",
                                  "Respondent": {"MasterCustomerID": "M1", "MaskedMobile": "138****5678"},
                                  "Answer": [{"QuestionID": "Q1", "FactorCode": "SERVICE_ADVISOR", "NumericValue": 9}]}}
    h = {**auth, "Idempotency-Key": str(uuid.uuid4())}
    assert requests.post(portal + "/survey-results", json=s, headers=h).status_code == 202
    assert requests.post(portal + "/survey-results", json=s, headers={**auth, "Idempotency-Key": str(uuid.uuid4())}
                         ).status_code == 200   # the same DocumentID again: already accepted
    clear = copy.deepcopy(s)
    clear["CustomerSurveyResult"]["DocumentID"] = "S2"
    clear["CustomerSurveyResult"]["Respondent"]["MaskedMobile"] = "13812345678"
    assert requests.post(portal + "/survey-results", json=clear, headers={**auth, "Idempotency-Key": str(uuid.uuid4())}
                         ).status_code == 422
    files = {"file": ("r.xlsx", b"one", "application/octet-stream")}
    form = {"dealerNumberId": "GZ0012", "reportType": "CSI_MONTHLY", "period": "2026-10"}
    r1 = requests.post(portal + "/reports", data=form, files=files, headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
    r2 = requests.post(portal + "/reports", data=form, files=files, headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
    r3 = requests.post(portal + "/reports", data=form, files={"file": ("r.xlsx", b"two", "application/octet-stream")},
                       headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
    assert (r1.status_code, r2.status_code, r3.status_code) == (201, 200, 201)
    assert r2.json()["reportId"] == r1.json()["reportId"] and r3.json()["supersedes"] == r1.json()["reportId"]


def test_state_survives_a_restart(tmp_path):
    with serving(create_app(tmp_path / "s.db")) as url:
        post(url + "/api/v1", claim("WC-RESTART"))
    with serving(create_app(tmp_path / "s.db")) as url:
        api = url + "/api/v1"
        assert requests.get(api + "/warranty-claims/WC-RESTART", headers=token(api)).status_code == 200


@pytest.mark.parametrize("form", [
    {"grant_type": "client_credentials", "client_id": "nobody"},                         # issue #15: got a token
    {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": ""},
    {"grant_type": "client_credentials", "client_id": "dealersync"},
    {"grant_type": "client_credentials", "client_id": "dealersync", "client_secret": "sandbox-secre"},
    {"grant_type": "password", "client_id": "dealersync", "client_secret": "sandbox-secret"},
])
def test_the_token_endpoint_requires_a_known_client_and_its_secret(portal, form):
    r = requests.post(portal + "/oauth/token", data=form)
    assert r.status_code == 401 and r.json()["Errors"][0]["ErrorCode"] == "INVALID_CLIENT"


def test_a_token_of_no_registered_client_reads_nothing(tmp_path):
    app = create_app(tmp_path / "t.db")
    with app.state.db.lock:   # a token minted for "nobody" (as the old endpoint did) must not open the code table
        app.state.db.run("INSERT INTO tokens VALUES (?, ?, ?)", "tok-nobody", "nobody", time.time() + 3600)
    with serving(app) as url:
        r = requests.get(url + "/api/v1/code-tables/labor-operations", headers={"Authorization": "Bearer tok-nobody"})
    assert r.status_code == 401 and r.json()["Errors"][0]["ErrorCode"] == "INVALID_CLIENT"


def survey_body(answer) -> dict:
    return {"ApplicationArea": {"Sender": {"CreatorNameCode": "T", "DealerNumberID": "GZ0012"},
                                "CreationDateTime": "2026-11-20T08:00:00Z", "BODID": str(uuid.uuid4())},
            "CustomerSurveyResult": {"DocumentID": f"S-{uuid.uuid4()}", "SurveyTypeCode": "CSI",
                                     "TriggerEvent": {"EventTypeCode": "RO_CLOSED", "DocumentID": "RO1",
                                                      "EventDateTime": "2026-11-19T08:00:00Z"},
                                     "CompletedDateTime": "2026-11-20T08:00:00Z",
                                     "Respondent": {"MasterCustomerID": "M1"}, "Answer": [answer]}}


@pytest.mark.parametrize("factor", [{"a": 1}, ["NPS"], 7, None])
def test_a_survey_factor_code_of_the_wrong_type_is_422_not_500(portal, factor):
    r = requests.post(portal + "/survey-results", json=survey_body({"QuestionID": "Q1", "FactorCode": factor}),
                      headers={**token(portal), "Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["Errors"][0]["ErrorCode"] == "INVALID_REFERENCE"


def test_a_claim_with_values_of_the_wrong_type_is_422_not_500(portal):
    body = claim("WC-TYPES")
    body["WarrantyClaim"]["Job"][0]["ServiceLabor"] = {"LaborOperationID": "A0101"}     # an object, not a list
    r = post(portal, body)
    assert r.status_code == 422
    body = claim("WC-TYPES2")
    body["WarrantyClaim"]["WarrantyClaimHeader"]["ClaimTypeString"] = {"x": 1}
    assert post(portal, body).status_code == 422


@pytest.mark.parametrize("area", [
    {"CreationDateTime": "䋚ë"},                       # not an RFC 3339 date-time
    {"CreationDateTime": "2026-11-20"},               # a date is not a date-time
    {"BODID": "not-a-uuid"},
    {"Sender": {"CreatorNameCode": None, "DealerNumberID": "GZ0012"}},
])
def test_an_application_area_outside_the_contract_is_refused_and_never_echoed(portal, area):
    """A 422 answers it, and the answer's OriginalApplicationArea (which must itself conform) is left out."""
    body = claim("AREA1")
    body["ApplicationArea"] = {**body["ApplicationArea"], **area}
    r = post(portal, body)
    assert r.status_code == 422
    assert "OriginalApplicationArea" not in r.json()
    assert r.json()["Errors"][0]["FieldPath"] == "ApplicationArea"
