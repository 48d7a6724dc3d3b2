"""Screenshots of each role's main page for docs/web.md: `python -m tests.browser.screenshots [OUT_DIR]`.

Starts the app on the demo data (`gi-service demo load`, on a temporary SQLite database and instance folder),
adds a little supervision work through the API (a Guangzhou inspector's finding with a photo, a case opened from
it and referred to 亳州), serves it on 127.0.0.1 and a free port, and photographs with Debian's chromium:

* ``authority.png`` — 亳州's authority home page (1280×800);
* ``case.png`` — the referred case on the production place's side (1280×800);
* ``producer.png`` — the 亳白芍 cooperative's home page on a phone (390×844);
* ``printer.png`` — the printing house's print orders on a phone (390×844);
* ``inspector.png`` — the inspector's scan page on a phone, having read a demo label through the (fake) camera;
* ``statistics.png`` — the statistics dashboard of the national administration (1280×800), when it exists.

The PNGs are reduced to a palette of 256 colours and optimised (about 100 KB each). Nothing is fetched from
anywhere but the local server. Default OUT_DIR: docs/screenshots.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image
from werkzeug.serving import make_server

from gi_service import create_app, migrate
from gi_service.codes import make_code
from gi_service.config import load_settings
from gi_service.demo import DEMO_PASSWORD, demo_token

from .camera import label_video
from .conftest import CHROMIUM, chromium_args

ROOT = Path(__file__).resolve().parents[2]
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True, "has_touch": True}
TIANHE = (23.1291, 113.3280)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_token(username)}"}


def _photo() -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (960, 720), (222, 214, 196))
    for x in range(180, 780, 150):
        image.paste((120, 70, 40), (x, 220, x + 110, 560))        # boxes on a shelf
        image.paste((240, 240, 235), (x + 30, 260, x + 80, 310))   # their labels
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _supervision_work(app, base: str) -> dict:
    """The demo's 亳白芍 labels, one of them found copied in a Guangzhou shop, and a case about it."""
    client = app.test_client()
    keyring = app.extensions["gi_keyring"]
    coop = _bearer("baishao-coop")
    batches = client.get("/api/v1/batches", headers=coop).get_json()["items"]
    batch = batches[0]
    serial = batch["first_serial"]
    label = client.get(f"/api/v1/marks/{serial}/label?format=png&preset=30x30&dpi=300", headers=coop)
    assert label.status_code == 200, label.get_json(silent=True)
    code = make_code(keyring, serial, kid=batch.get("key_id") or keyring.active)
    inspector = _bearer("gz-inspector")
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)
    r = client.post("/api/v1/findings", headers=inspector, json={
        "client_id": "demo-phone:0001", "observed_at": (now - dt.timedelta(hours=2)).isoformat(),
        "lat": TIANHE[0], "lon": TIANHE[1], "premises": {"name": "天河茶叶市场 A12 档", "kind": "retail",
                                                         "address": "广州市天河区（演示）"},
        "codes": [f"{base}/v/{code}"], "violations": ["forged_or_copied_label"],
        "notes": "同一标签出现在 12 盒亳白芍上（演示）"})
    assert r.status_code in (200, 201), r.get_json()
    finding_id = r.get_json()["id"]
    r = client.post(f"/api/v1/findings/{finding_id}/photos", headers=inspector,
                    data={"photo": (io.BytesIO(_photo()), "shelf.jpg", "image/jpeg")}, content_type="multipart/form-data")
    assert r.status_code in (200, 201), r.get_json()
    r = client.post("/api/v1/cases", headers=inspector, json={
        "title": "天河茶叶市场复制亳白芍标签", "reason": "现场检查发现同一标签贴在多盒商品上", "finding_ids": [finding_id]})
    assert r.status_code == 201, r.get_json()
    case_id = r.get_json()["id"]
    r = client.post(f"/api/v1/cases/{case_id}/refer", headers=inspector,
                    json={"reason": "生产者在亳州市谯城区，移送生产地主管部门"})
    assert r.status_code == 200, r.get_json()
    r = client.post("/api/v1/mark-requests", headers=coop, json={
        "gi_id": batch["gi_id"], "pack_size_g": 500, "quantity": 1000, "note": "演示：500 g 礼盒"})
    assert r.status_code == 201, r.get_json()
    return {"label_png": label.data, "case_id": case_id}


def _optimise(path: Path) -> None:
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def _login(context, base: str, username: str):
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/app")
    return page


def _guard(context, base: str) -> None:
    """Pages may reach only the local server."""
    netloc = urlsplit(base).netloc

    def route(r):
        if urlsplit(r.request.url).netloc == netloc:
            r.continue_()
        else:
            r.abort()
    context.route("**/*", route)


def main(out_dir: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gi-screenshots-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings({"GI_INSTANCE_PATH": str(tmp / "instance"), "GI_DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
                              "GI_PUBLIC_BASE_URL": base, "GI_ENV": "development",
                              "GI_CACHE_DIR": os.environ.get("GI_CACHE_DIR", str(Path.home() / ".cache" / "gi-service"))})
    migrate.upgrade(settings.database_url)
    app = create_app(settings)
    from gi_service.demo import load_demo

    with app.extensions["gi_sessionmaker"]() as session:
        load_demo(session, key_id=settings.mark_key_id)
        session.commit()
    work = _supervision_work(app, base)
    label = Image.open(io.BytesIO(work["label_png"])).convert("RGB")
    video = label_video(tmp / "label.y4m", label)

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    saved: list[Path] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())

            def shoot(name: str, username: str, path: str, options: dict, ready: str | None = None) -> None:
                context = browser.new_context(locale="zh-CN", **options)
                _guard(context, base)
                page = _login(context, base, username)
                page.goto(base + path)
                if ready:
                    page.wait_for_selector(ready)
                target = out_dir / f"{name}.png"
                page.screenshot(path=str(target))
                context.close()
                _optimise(target)
                saved.append(target)

            shoot("authority", "bozhou-admin", "/app", DESKTOP)
            shoot("case", "bozhou-admin", f"/app/cases/{work['case_id']}", DESKTOP, "#evidence img")
            shoot("producer", "baishao-coop", "/app", PHONE)
            shoot("printer", "printer", "/app/batches", PHONE)
            if "web.statistics" in app.view_functions:
                shoot("statistics", "cnipa-admin", "/app/statistics", DESKTOP, "#charts svg")
            browser.close()

            camera = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}"))
            context = camera.new_context(locale="zh-CN", permissions=["camera", "geolocation"],
                                         geolocation={"latitude": TIANHE[0], "longitude": TIANHE[1]}, **PHONE)
            _guard(context, base)
            page = _login(context, base, "gz-inspector")
            page.goto(base + "/app/scan")
            page.click("#scan-start")
            page.wait_for_selector("#scanned li.verdict[data-verdict]", timeout=30_000)
            target = out_dir / "inspector.png"
            page.screenshot(path=str(target))
            _optimise(target)
            saved.append(target)
            context.close()
            camera.close()
    finally:
        server.shutdown()
        server.server_close()
    return saved


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    for path in main(out):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size // 1024} KB")
