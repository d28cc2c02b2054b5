"""A master customer removed by the retention purge leaves the CRM too (issue #16 leftover): the purge
queues the delete of its contact on the CRM sync ledger (``crm_push`` TO_DELETE) and the next contact push
sends it, once, against the sandbox CRM on loopback. Before, the master row was deleted and the contact
stayed in the CRM for good (the delete loop joined the ledger to a master row that no longer existed)."""
from __future__ import annotations

from datetime import date, datetime

import requests
from sqlalchemy import select, update

from dealersync.services import crm_sync, ops
from dealersync.services.followups import Rules
from dealersync.store.tables import FEED_TABLES, crm_push, master_customer
from tests.dealersync.test_crm_sync import TOKEN, client_for, crm_server, stats, store  # noqa: F401  (fixture)

NOW = date(2026, 11, 30)
DAY = date(2026, 11, 5)


def _active(engine) -> set[str]:
    with engine.begin() as c:
        return set(c.execute(select(master_customer.c.master_id).where(master_customer.c.status == "ACTIVE")).scalars())


def test_purged_masters_leave_the_crm_once(store, tmp_path):  # noqa: F811
    with crm_server(tmp_path) as url:
        client = client_for(url)
        crm_sync.push_contacts(store, client, DAY, Rules())
        before = _active(store)
        assert stats(url)["contacts"] == len(before)
        with store.begin() as c:   # every export last loaded six years ago: customers with nothing kept go
            for feed in ("customers", "vehicles", "vehicle_sales"):
                c.execute(update(FEED_TABLES[feed]).values(ingested_at=datetime(2020, 1, 1)))
            out = {r["table"]: r for r in ops.purge(c, NOW, now=NOW)}
            left = set(c.execute(select(master_customer.c.master_id)).scalars())
            queued = dict(c.execute(select(crm_push.c.external_id, crm_push.c.status).where(
                crm_push.c.kind == "CONTACT", crm_push.c.external_id.in_(before - left))).all())
        purged = before - left
        assert 0 < len(purged) < len(before)
        assert out["crm_push (CRM delete queued)"]["rows"] == len(purged)
        assert queued == dict.fromkeys(purged, "TO_DELETE")

        pushed = crm_sync.push_contacts(store, client, DAY, Rules())
        assert pushed["deleted"] == len(purged)
        s = stats(url)
        assert s["contacts"] == len(before) - len(purged)
        assert all(s["by_path"].get(f"/crm/v1/contacts/{m}") == 1 for m in purged)   # one DELETE each
        again = crm_sync.push_contacts(store, client, DAY, Rules())
        assert again["deleted"] == 0
        assert all(stats(url)["by_path"].get(f"/crm/v1/contacts/{m}") == 1 for m in purged)   # still one each
        assert all(requests.get(f"{url}/crm/v1/contacts/{m}", headers=TOKEN).status_code == 404 for m in purged)
        with store.begin() as c:
            assert set(c.execute(select(crm_push.c.status).where(crm_push.c.external_id.in_(purged))).scalars()) \
                == {"DELETED"}


def test_an_erased_customer_leaves_the_crm_once(store, tmp_path):  # noqa: F811
    from dealersync.store import personal
    with crm_server(tmp_path) as url:
        client = client_for(url)
        crm_sync.push_contacts(store, client, DAY, Rules())
        mid = sorted(_active(store))[0]
        with store.begin() as c:
            assert personal.erase_customer(c, mid, actor="test", reason="PIPL art. 47")
        assert crm_sync.push_contacts(store, client, DAY, Rules())["deleted"] == 1
        assert requests.get(f"{url}/crm/v1/contacts/{mid}", headers=TOKEN).status_code == 404
        assert crm_sync.push_contacts(store, client, DAY, Rules())["deleted"] == 0
        assert stats(url)["by_path"].get(f"/crm/v1/contacts/{mid}") == 2   # one DELETE, then the GET above
