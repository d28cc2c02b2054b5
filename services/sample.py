"""Realistic sample exports of the seven DMS feeds (STOCK: the day's inventory snapshot), with the dirt of ``dms-exports.md`` section 5,
and a ground-truth file saying which customer records are the same person.

Deterministic for a given seed. ``dms_a`` writes GB18030 CSV; ``dms_b`` writes XLSX (with a title
row) for customers and vehicles and UTF-8-with-BOM CSV for the rest.
"""
from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path


from dealersync.schemas.identifiers import make_vin, resident_id, uscc
from dealersync.schemas.feeds import FEEDS
from dealersync.schemas.profiles import load_profiles

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕斌海波宇浩然子轩欣怡梓涵一诺雨")
TRAD = str.maketrans("伟刚华丽强军杰涛红玲国东张陈刘杨黄赵吴郑罗马许邓冯", "偉剛華麗強軍傑濤紅玲國東張陳劉楊黃趙吳鄭羅馬許鄧馮")
CITIES = [("广东省", "广州市", ["天河区", "越秀区", "海珠区", "番禺区"], "510000", "粤A"),
          ("广东省", "深圳市", ["南山区", "福田区", "宝安区"], "518000", "粤B"),
          ("北京市", "北京市", ["朝阳区", "海淀区", "丰台区"], "100000", "京A"),
          ("上海市", "上海市", ["浦东新区", "徐汇区", "闵行区"], "200000", "沪A")]
MODELS = [("大众", "迈腾 2.0T", "2.0T"), ("大众", "朗逸 1.5L", "1.5"), ("丰田", "凯美瑞 2.5L", "2.5"),
          ("本田", "雅阁 1.5T", "1.5T"), ("别克", "GL8 2.0T", "2.0T"), ("比亚迪", "汉 EV", "")]
STREETS = ["中山大道", "人民路", "建设路", "解放路", "体育西路", "花园街", "滨江东路"]
COMPANY_WORDS = ["恒达", "宏图", "金盛", "华信", "远航", "鼎泰", "永安"]
ADVISORS = ["李明", "王静", "陈强", "赵敏"]
SALESPEOPLE = [("刘洋", "13600001111"), ("黄磊", "13700002222"), ("周杰", "13500003333")]
LABOR_OPS = ["A0101", "A0203", "B1105", "C2201", "D3004", "E1002"]
PARTS = ["06H115562", "5Q0615301F", "1K0407151", "3C0698451", "04E906262"]


def mobile(rng: random.Random) -> str:
    return rng.choice(["13", "15", "18", "17", "19"]) + f"{rng.randrange(10 ** 9):09d}"


@dataclass
class Person:
    pid: str
    name: str
    org: bool
    male: bool
    birth: date
    id_number: str
    mobile: str
    phone: str
    address: str
    postcode: str
    email: str
    plate_prefix: str
    vehicles: list = field(default_factory=list)


def _people(rng: random.Random, n: int) -> list[Person]:
    out = []
    households: list[Person] = []
    for i in range(n):
        prov, city, districts, pc, plate = rng.choice(CITIES)
        addr = f"{prov}{city}{rng.choice(districts)}{rng.choice(STREETS)}{rng.randrange(1, 999)}号"
        org = rng.random() < 0.06
        male = rng.random() < 0.6
        birth = date(1955, 1, 1) + timedelta(days=rng.randrange(0, 17000))
        if org:
            name = f"{city[:-1]}{rng.choice(COMPANY_WORDS)}{rng.choice(['贸易', '物流', '汽车服务', '科技'])}有限公司"
            idn = uscc(rng)
        else:
            name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2, 2])))
            idn = resident_id(rng, birth, male)
        p = Person(f"P{i + 1:07d}", name, org, male, birth, idn, mobile(rng),
                   f"0{rng.choice(['20', '755', '10', '21'])}-{rng.randrange(2000000, 89999999)}",
                   addr, pc, f"user{i}@example.cn" if rng.random() < 0.3 else "", plate)
        if households and rng.random() < 0.08 and not org:  # a family member: same phone and address
            h = rng.choice(households)
            p.mobile, p.address, p.postcode = h.mobile, h.address, h.postcode
        households.append(p)
        out.append(p)
    return out


class _Dirt:
    """Injects the spec's dirt into about ``rate`` of the rows."""

    def __init__(self, rng: random.Random, rate: float):
        self.rng, self.rate = rng, rate

    def hit(self, k: float = 1.0) -> bool:
        return self.rng.random() < self.rate * k

    def mobile(self, m: str) -> str:
        if not m or not self.hit(4):
            return m
        return self.rng.choice([f"{m[:3]} {m[3:7]} {m[7:]}", f"+86 {m[:3]}-{m[3:7]}-{m[7:]}", f"86{m}",
                                m.translate(str.maketrans("0123456789", "０１２３４５６７８９")), f"'{m}",
                                m[:-1]])

    def date(self, d: date | None, serial_ok: bool) -> str:
        if d is None:
            return ""
        if not self.hit(3):
            return d.isoformat()
        forms = [f"{d.year}/{d.month}/{d.day}", d.strftime("%Y%m%d"), d.strftime("%Y-%m-%d 00:00:00"), "NULL"]
        if serial_ok:
            forms.append(str((d - date(1899, 12, 30)).days))
        if self.hit(0.5):
            forms.append(f"{d.year}-02-30")
        return self.rng.choice(forms)

    def blank(self, v: str) -> str:
        return self.rng.choice(["NULL", "无", "-", ""]) if v and self.hit(0.5) else v


def _rows_for(people: list[Person], rng: random.Random, dirt: _Dirt, start: date, days: int,
              serial_dates: bool, recent_claims_within: int | None = None):
    customers, truth, vehicles, ros, lines, sales, claims = [], [], [], [], [], [], []
    cid = 0
    for p in people:
        cid += 1
        p.cid = f"C{cid:07d}"
        ids = [p.cid]
        if dirt.hit(2):  # the same customer under a second customer_id
            cid += 1
            ids.append(f"C{cid:07d}")
        for k, c in enumerate(ids):
            name = p.name if k == 0 or p.org else rng.choice([p.name.translate(TRAD), f" {p.name} ", p.name])
            idn = p.id_number
            if dirt.hit(0.5):
                idn = f"{int(idn[:17]) * 10:.13E}".replace("E+", "E+") if idn[:17].isdigit() else idn
            elif dirt.hit(0.5) and idn.endswith("X"):
                idn = idn[:-1] + "x"
            elif dirt.hit(0.3):
                idn = idn[:-1] + ("0" if idn[-1] != "0" else "1")
            customers.append({
                "customer_id": c, "name": name, "customer_type": "单位" if p.org else "个人",
                "gender": "" if p.org else ("男" if p.male else "女"), "mobile": dirt.mobile(p.mobile),
                "phone": dirt.blank(p.phone), "id_type": "统一社会信用代码" if p.org else "身份证",
                "id_number": idn, "address": p.address, "postcode": p.postcode, "email": p.email,
                "birthday": "" if p.org else dirt.date(p.birth, serial_dates),
                "created_date": dirt.date(start - timedelta(days=rng.randrange(30, 2000)), serial_dates),
                "advisor": rng.choice(ADVISORS), "source_channel": rng.choice(["展厅", "电话", "网络", "转介绍", "车展"]),
                "marketing_consent": rng.choice(["是", "否", "Y", "N", "1", "0", ""])})
            truth.append({"source": "DMS", "source_id": c, "person_id": p.pid})
        for _ in range(1 if rng.random() < 0.85 else 2):
            vin = make_vin(rng)
            sale = start - timedelta(days=rng.randrange(1, 1500))
            km = rng.randrange(500, 20000)
            plate = p.plate_prefix + "".join(rng.choice("0123456789ABCDEFGHJK") for _ in range(5))
            brand, model, disp = rng.choice(MODELS)
            vehicles.append({"vin": vin.lower() if dirt.hit() else vin, "engine_no": f"E{rng.randrange(10 ** 8):08d}",
                             "plate": plate, "brand": brand, "model": model, "color": rng.choice(["白", "黑", "灰", "红"]),
                             "displacement": disp, "production_date": dirt.date(sale - timedelta(days=60), serial_dates),
                             "sale_date": dirt.date(sale, serial_dates),
                             "registration_date": dirt.date(sale + timedelta(days=7), serial_dates),
                             "owner_customer_id": p.cid, "mileage_km": str(km)})
            sp, sp_mobile = rng.choice(SALESPEOPLE)
            sale_no = f"S{len(sales) + 1:07d}"
            sales.append({"sale_no": sale_no, "order_date": dirt.date(sale - timedelta(days=10), serial_dates),
                          "invoice_date": dirt.date(sale, serial_dates), "delivery_date": dirt.date(sale + timedelta(days=3), serial_dates),
                          "vin": vin, "customer_id": p.cid, "customer_name": p.name,
                          "mobile": sp_mobile if rng.random() < 0.05 else dirt.mobile(p.mobile),
                          "id_number": p.id_number, "salesperson": sp, "model": model,
                          "price": f"{rng.randrange(120000, 380000):,}.00" if dirt.hit(5) else f"{rng.randrange(120000, 380000)}.00",
                          "payment": rng.choice(["全款", "贷款", "分期"])})
            truth.append({"source": "SALES", "source_id": sale_no, "person_id": p.pid})
            visits = sorted(rng.randrange(0, days) for _ in range(rng.randrange(1, 4)))
            for v_i, ago in enumerate(reversed(visits)):
                opened = datetime.combine(start - timedelta(days=ago), datetime.min.time()) + \
                    timedelta(hours=rng.randrange(8, 17), minutes=rng.randrange(60))
                km += rng.randrange(2000, 9000)
                shown_km = km - 5000 if dirt.hit(0.5) and v_i else km
                rtype = rng.choice(["首保", "定保", "保养", "小修", "索赔", "事故", "保险"])
                ro_no = f"RO{len(ros) + 1:08d}"
                labor = rng.randrange(100, 1500)
                parts = rng.randrange(0, 5000)
                status = rng.choice(["已结算", "已交车", "在修"])
                if recent_claims_within is not None:   # the demo: same draws, a workshop's recent weeks
                    if rtype == "索赔" and v_i < len(visits) - 1:
                        rtype = "小修"                    # a warranty claim only on a vehicle's latest visit...
                    elif rtype == "索赔" and ago > recent_claims_within:
                        moved = ago % recent_claims_within + 1   # ...inside the claim window both sides agree on
                        opened += timedelta(days=ago - moved)
                        ago = moved
                    if status == "在修" and ago > 2:        # only the last two days' cars are still in the shop
                        status = "已结算"
                closed = "" if status == "在修" else (opened + timedelta(hours=rng.randrange(2, 30))).strftime("%Y-%m-%d %H:%M:%S")
                ros.append({"ro_number": ro_no, "opened_at": opened.strftime("%Y-%m-%d %H:%M:%S"),
                            "closed_at": closed, "delivered_at": closed, "vin": vin, "plate": plate,
                            "customer_id": p.cid, "sender_name": p.name if not p.org else rng.choice(SURNAMES) + "师傅",
                            "sender_mobile": dirt.mobile(p.mobile), "mileage_km": str(shown_km), "repair_type": rtype,
                            "advisor": rng.choice(ADVISORS), "labor_amount": f"{labor:.2f}",
                            "parts_amount": f"{parts:,.2f}" if dirt.hit(5) else f"{parts:.2f}",
                            "total_amount": f"{labor + parts:.2f}", "complaint": rng.choice(["异响", "保养", "漏油", "刹车软", ""]),
                            "status": status})
                if not p.org:  # a fleet's cars are brought in by its drivers, who are not the customer
                    truth.append({"source": "SERVICE", "source_id": ro_no, "person_id": p.pid})
                for ln in range(1, rng.randrange(2, 5)):
                    is_labor = ln == 1
                    lines.append({"ro_number": ro_no, "line_no": str(ln), "line_type": "工时" if is_labor else "配件",
                                  "code": rng.choice(LABOR_OPS) if is_labor else rng.choice(PARTS),
                                  "description": "工时" if is_labor else "配件", "quantity": "1",
                                  "hours": "1.5" if is_labor else "", "unit_price": f"{labor if is_labor else parts:.2f}",
                                  "amount": f"{labor if is_labor else parts:.2f}",
                                  "pay_type": "索赔" if rtype == "索赔" else "客户付费",
                                  "causal_part": "是" if (rtype == "索赔" and ln == 2) else "否"})
                if rtype == "索赔":
                    claims.append({"claim_no": f"WC{len(claims) + 1:07d}", "ro_number": ro_no, "vin": vin,
                                   "mileage_km": str(km), "claim_type": "保修", "complaint_code": "C01",
                                   "complaint": "异响", "cause_code": "R07", "cause": "部件磨损",
                                   "correction": "更换", "defect_code": "D100", "causal_part_no": rng.choice(PARTS),
                                   "labor_op_codes": ";".join(rng.sample(LABOR_OPS, 2)),
                                   "claim_amount": f"{labor + parts:.2f}", "authorization_no": ""})
    return {"customers": customers, "vehicles": vehicles, "repair_orders": ros, "repair_order_lines": lines,
            "vehicle_sales": sales, "warranty_claims": claims}, truth


STOCK_STATUSES = [("在库", 50), ("在途", 15), ("已订", 15), ("已售未交", 10), ("调出", 3)]


def _stock_rows(rng: random.Random, n: int, bdate: date, compact_dates: bool) -> list[dict]:
    """The day's new-vehicle inventory (spec 2.7): ``n`` vehicles; most on hand with an arrival date up
    to five months back, in transit ones without; certificates mostly pledged to the financing bank."""
    out = []
    for _ in range(n):
        status = rng.choices([s for s, _ in STOCK_STATUSES], [w for _, w in STOCK_STATUSES])[0]
        arrival = None if status == "在途" else bdate - timedelta(days=int(rng.triangular(0, 150, 20)))
        _, model, _ = rng.choice(MODELS)
        cert = "已交客户" if status == "已售未交" and rng.random() < 0.3 else rng.choices(["抵押", "在店"], [70, 30])[0]
        out.append({"vin": make_vin(rng), "model": model, "trim": rng.choice(["舒适版", "豪华版", "旗舰版"]),
                    "color": rng.choice(["白", "黑", "灰", "蓝", "红"]),
                    "arrival_date": "" if arrival is None else arrival.strftime("%Y%m%d" if compact_dates else "%Y-%m-%d"),
                    "stock_status": status, "location": "" if arrival is None else f"{rng.choice('ABC')}{rng.randrange(1, 40):02d}",
                    "certificate_status": cert, "purchase_price": f"{rng.randrange(90, 260) * 1000:.2f}"})
    return out


def _headers(profile_name: str, feed: str) -> list[str]:
    prof = load_profiles()[profile_name]
    return [prof.columns[feed][c][0] for c in FEEDS[feed].columns]


def _write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str, totals: bool,
               bad_bytes_rows: set[int]) -> None:
    with open(path, "wb") as f:
        if encoding == "utf-8-sig":
            f.write(b"\xef\xbb\xbf")
            encoding = "utf-8"
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(header)
        f.write(buf.getvalue().encode(encoding))
        for i, r in enumerate(rows):
            buf.seek(0), buf.truncate()
            w.writerow(r)
            data = buf.getvalue().encode(encoding)
            if i in bad_bytes_rows:  # a few undecodable bytes, in the last (free text) cell
                data = data[:-2] + b"\xff\xfe" + data[-2:]
            f.write(data)
        if totals:
            buf.seek(0), buf.truncate()
            w.writerow(["合计", str(len(rows))] + [""] * (len(header) - 2))
            f.write(buf.getvalue().encode(encoding))


def _write_xlsx(path: Path, header: list[str], rows: list[list], title: str) -> None:
    import openpyxl
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Sheet1")
    ws.append([title])
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)


def generate(out: Path, *, rows: int = 200, seed: int = 7, profile: str = "dms_a", dealer: str = "GZ0012",
             business_date: date | None = None, dirt_rate: float = 0.02,
             recent_claims_within: int | None = None) -> dict[str, Path]:
    """Write one export per feed plus ``<dealer>_truth_<date>.csv``. ``rows`` is the number of people.

    ``recent_claims_within`` (days; the demo's setting): warranty claims only on each vehicle's latest
    repair order, opened at most that many days before ``business_date`` (inside the claim window), and
    repair orders still open (在修) only in the last two days. None keeps the historical sample
    (claims on any visit of the year, a third of the orders open), byte for byte."""
    if profile not in ("dms_a", "dms_b"):
        raise ValueError("sample supports the built-in profiles dms_a and dms_b")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    bdate = business_date or date(2026, 11, 3)
    people = _people(rng, rows)
    feeds, truth = _rows_for(people, rng, _Dirt(rng, dirt_rate), bdate, 365, serial_dates=profile == "dms_b",
                             recent_claims_within=recent_claims_within)
    # the day's stock snapshot, from its own generator so the other feeds stay as they were for a seed
    feeds["stock"] = _stock_rows(random.Random(seed + 1), max(rows // 5, 8), bdate, compact_dates=profile == "dms_b")
    written = {}
    for feed, recs in feeds.items():
        cols = list(FEEDS[feed].columns)
        header = _headers(profile, feed)
        body = [[r.get(c, "") for c in cols] for r in recs]
        if recs and len(recs) > 5:  # a duplicated row inside the file
            body.insert(len(body) // 2, list(body[len(body) // 3]))
        token = FEEDS[feed].token
        if profile == "dms_b" and feed in ("customers", "vehicles"):
            p = out / f"{dealer}_{token}_{bdate:%Y%m%d}.xlsx"
            _write_xlsx(p, header, body, title=f"{feed} 导出 {bdate:%Y-%m-%d}")
        else:
            p = out / f"{dealer}_{token}_{bdate:%Y%m%d}.csv"
            bad = {rng.randrange(len(body))} if body and profile == "dms_a" and feed == "repair_orders" else set()
            _write_csv(p, header, body, "gb18030" if profile == "dms_a" else "utf-8-sig",
                       totals=feed == "repair_orders", bad_bytes_rows=bad)
        written[feed] = p
    tp = out / f"{dealer}_truth_{bdate:%Y%m%d}.csv"
    with open(tp, "w", encoding="utf-8", newline="") as f:  # source ids as the resolver names them
        w = csv.DictWriter(f, ["source", "source_id", "person_id"])
        w.writeheader()
        w.writerows({**t, "source_id": f"{dealer}:{t['source_id']}"} for t in truth)
    written["truth"] = tp
    return written
