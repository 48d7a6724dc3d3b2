"""Rules of the web layer that need no browser: the words of both languages, the idle limit of a
session, CSRF by header for scripts, and that every web rule is declared like the API's."""
from __future__ import annotations

import re
import time
from pathlib import Path

from gi_service.models import OrgKind
from gi_service import i18n

TEMPLATES = Path(__file__).resolve().parents[2] / "gi_service" / "web"


def test_every_word_has_chinese_and_english_and_every_used_key_exists():
    """Does every text key have both a Chinese and an English version, and does every key the pages and
    views use exist in the table?"""
    for key, (zh, en) in {**i18n.TEXTS, **i18n.VALUES}.items():
        assert zh.strip() and en.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or zh == en or zh.isascii(), key
    used = set()
    for path in [*TEMPLATES.glob("templates/app/*.html"), *TEMPLATES.glob("*.py")]:
        used.update(re.findall(r"\bt\(\s*['\"]([a-z_]+)['\"]\s*[,)]", path.read_text(encoding="utf-8")))
        used.update(re.findall(r"\(\"web\.\w+\", \"([a-z_]+)\"\)", path.read_text(encoding="utf-8")))
    used.update(f"kind_{kind.value}" for kind in OrgKind)  # the layout's t('kind_' ~ principal.kind)
    missing = sorted(k for k in used if k not in i18n.TEXTS)
    assert missing == []


def _signed_in(client, actor):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": actor.principal.username, "password": "password-123456",
                                    "csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"].endswith("/app")
    home = client.get("/app").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)


def test_a_session_idle_for_longer_than_the_limit_has_expired(app, client, factory):
    """Does a session whose last request is older than PERMANENT_SESSION_LIFETIME (12 h) lead back to sign-in
    with 'session expired', while a recent one still works?"""
    _signed_in(client, factory.producer())
    assert client.get("/app").status_code == 200
    with client.session_transaction() as s:
        s["seen"] = time.time() - app.permanent_session_lifetime.total_seconds() - 60
    r = client.get("/app")
    assert r.status_code == 303 and "/login" in r.headers["Location"]
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "登录已过期" in page


def test_scripts_may_send_the_csrf_token_as_a_header(client, factory):
    """Is the token accepted in X-CSRF-Token (for fetch from the pages' own scripts) and a wrong header refused?"""
    token = _signed_in(client, factory.producer())
    assert client.post("/logout", headers={"X-CSRF-Token": "wrong"}).status_code == 400
    assert client.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303


def test_a_write_from_another_origin_is_refused_even_with_the_token(client, factory):
    """Is a POST whose Origin is another site refused (400) although it carries the right token?"""
    token = _signed_in(client, factory.producer())
    r = client.post("/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 400
    assert client.get("/app").status_code == 200  # still signed in: the forged sign-out did nothing


def test_every_web_rule_declares_its_access_and_is_documented(app):
    """Does every /app, /login and /logout rule carry an access rule and appear in the OpenAPI list as an HTML
    page?"""
    from gi_service.http.access import Access
    from gi_service.http.contract import SPECS

    documented = {s.endpoint.split("_POST")[0].split("_GET")[0] for s in SPECS if s.tags == ("web pages",)}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web.") or rule.endpoint == "web.static":
            continue
        assert isinstance(getattr(app.view_functions[rule.endpoint], "gi_access", None), Access), rule.endpoint
        assert rule.endpoint in documented, rule.endpoint
