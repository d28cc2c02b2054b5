"""Logs never carry a mobile, resident ID, e-mail or secret in clear."""
from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from dealersync.config import Settings
from dealersync.privacy import install_log_filter, mask_text


@pytest.mark.parametrize("raw,masked", [
    ("call 13812345678 now", "call 138****5678 now"),
    ("+86 138-1234-5678", "138****5678"),
    ("8613812345678", "138****5678"),
    ("id 11010519491231002X ok", "id 110105********002X ok"),
    ("id 11010519491231002x", "id 110105********002X"),
    ("mail zhang.wei@example.cn", "mail z***@example.cn"),
    ("RO00012345678 order", "RO00012345678 order"),            # an order number is not a phone
    ("VIN LFV2A21K6A4123458", "VIN LFV2A21K6A4123458"),
    ("amount 1380012345678901", "amount 1380012345678901"),    # 16 digits: neither
])
def test_mask_text(raw, masked):
    assert mask_text(raw) == masked


def test_log_records_are_masked_including_secrets(caplog):
    s = Settings(crm_token=SecretStr("tok-very-secret-42"))
    install_log_filter(s)
    log = logging.getLogger("dealersync.test")
    with caplog.at_level(logging.INFO, logger="dealersync.test"):
        log.info("customer %s with mobile %s sent token %s", "张伟", "13912345678", "tok-very-secret-42")
        log.warning("bad ID 11010519491231002X in row %d", 7)
    text = caplog.text
    assert "13912345678" not in text and "139****5678" in text
    assert "tok-very-secret-42" not in text and "******" in text
    assert "11010519491231002X" not in text and "110105********002X" in text
