"""What every public answer (`/v/…`, the GS1 resolver, the product page) carries whatever its verdict: one JSON shape,
the same answer from the bench's bare verdict, a strict Content-Security-Policy, no framing, the service's icon,
and an OpenAPI entry that says what it answers.
"""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from werkzeug.test import Client

from bench import bare
from gi_service import create_app
from gi_service.config import Settings, finalize
from gi_service.models import Verdict
from gi_service.services.verification import STATUS
from tests.conftest import CACHE_DIR

from .conftest import forged

JSON = {"Accept": "application/json"}
GTIN = "09506000134352"


@pytest.fixture
def marks(world):
    """A batch with a GTIN: 1-5 activated on lot L-1 (3 voided), 6-10 never activated."""
    b = world.batch(10, gtin=GTIN)
    world.activate(b, 1, 5)
    world.void(b, 3)
    return b


def _cases(world, b) -> dict[str, tuple[str, Verdict]]:
    from gi_service.codes import format_serial, make_code
    return {
        "genuine": (f"/v/{b.code(1)}", Verdict.genuine),
        "genuine, another lot": (f"/v/{b.code(2)}?lot=L-9", Verdict.genuine),
        "not activated": (f"/v/{b.code(7)}", Verdict.genuine_not_activated),
        "voided": (f"/v/{b.code(3)}", Verdict.voided),
        "forged": (f"/v/{forged(b.code(1))}", Verdict.unknown),
        "never issued": (f"/v/{make_code(world.keyring, format_serial('BBSH', 2026, 999_999))}", Verdict.unknown),
        "malformed": ("/v/NOT-A-CODE", Verdict.malformed),
    }


# --- one shape for every verdict ---------------------------------------------------------------------------

def test_every_verdict_answers_the_verdict_document_at_the_top_level(world, client, marks):
    """Does every verdict of /v/{code} and of the resolver's direct answers (forged, malformed, without a tag)
    answer JSON of one shape — the verdict document at the top level with `verdict` always present, `message`
    bilingual, `reason` a sentence — non-genuine answers adding only `error` (the verdict) and `request_id`?"""
    base = {"verdict", "genuine", "status", "detail", "reason", "title", "message", "advice", "code", "serial",
            "serial_display"}
    paths = [path for path, _ in _cases(world, marks).values()] + [
        f"/01/{GTIN}/21/{marks.serial(1)}", f"/01/{GTIN}/21/{marks.serial(1)}?v={marks.tag(2)}",
        "/01/09506000134353/21/X"]
    genuine_keys = set(client.get(f"/v/{marks.code(4)}", headers=JSON).json)
    for path in paths:
        r = client.get(path, headers=JSON)
        doc = r.json
        assert r.mimetype == "application/json" and base <= set(doc), path
        assert doc["status"] == r.status_code == STATUS[Verdict(doc["verdict"])], path
        assert set(doc["message"]) == {"zh", "en"} and isinstance(doc["reason"], str), path
        extra = set(doc) - genuine_keys
        if doc["genuine"]:
            assert "error" not in doc and extra <= {"lot_mismatch"}, path
        else:
            assert doc["error"] == doc["verdict"] and extra == {"error", "request_id"}, (path, extra)


def test_the_bare_verdict_answers_what_the_json_verdict_answers(world, app, client, marks):
    """Does bench/bare.py (no Flask) answer each verdict with the JSON verdict's status and document — the same
    keys and values, but for what each check changes (its count, its scan token) and the request id?"""
    application = Client(bare.make_application(app))

    def comparable(doc: dict) -> dict:
        doc = {k: v for k, v in doc.items() if k != "request_id"}
        for volatile in ("checks", "scan"):
            if volatile in doc:
                doc[volatile] = sorted(doc[volatile])
        return doc

    for case, (path, verdict) in _cases(world, marks).items():
        view = client.get(path, headers=JSON)
        answer = application.get(path, headers=JSON)
        assert answer.status_code == view.status_code == STATUS[verdict], case
        assert answer.headers["Content-Type"] == "application/json" and answer.json["verdict"] == verdict.value, case
        assert comparable(answer.json) == comparable(view.json), case


# --- the policy and the icon --------------------------------------------------------------------------------

def _nonce_of(policy: str) -> str:
    nonces = set(re.findall(r"'nonce-([^']+)'", policy))
    assert len(nonces) == 1, policy
    return nonces.pop()


def _strict(r) -> str:
    policy = r.headers["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'", policy
    assert directives["base-uri"] == "'none'", policy
    assert "http" not in policy and "*" not in policy and "unsafe" not in policy and "data:" not in policy, policy
    assert r.headers["X-Frame-Options"] == "DENY"
    return policy


def _page_runs_only_its_own_inline_code(r) -> None:
    html = r.get_data(as_text=True)
    nonce = _nonce_of(_strict(r))
    tags = re.findall(r"<(script|style)\b([^>]*)>", html)
    assert tags, "a page with no inline style?"
    for tag, attrs in tags:
        assert f'nonce="{nonce}"' in attrs, (tag, attrs)
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert not re.search(r"<[a-z][^>]*\sstyle\s*=", html), "a style attribute"
    assert '<link rel="icon" href="/favicon.ico">' in html


def test_public_pages_carry_a_strict_policy_their_own_scripts_satisfy(world, client, marks):
    """Does every public page (each verdict, the resolver's malformed and unknown answers, the product page, a
    GTIN without a product, the report's result) carry a CSP that loads nothing from elsewhere and runs only
    its own inline style and scripts, by a nonce that changes with every answer, and X-Frame-Options: DENY?"""
    pages = [path for path, _ in _cases(world, marks).values()] + [
        "/01/09506000134353/21/X", f"/01/{GTIN}/21/{marks.serial(1)}", f"/p/{GTIN}?lot=L-1", "/01/96385074"]
    for path in pages:
        r = client.get(path)
        assert r.mimetype == "text/html", path
        _page_runs_only_its_own_inline_code(r)
    first, second = (client.get(f"/v/{marks.code(1)}").headers["Content-Security-Policy"] for _ in range(2))
    assert _nonce_of(first) != _nonce_of(second)
    token = client.get(f"/v/{marks.code(1)}", headers=JSON).json["scan"]["token"]
    for token_sent, status in ((token, 201), ("not-a-token", 403)):
        r = client.post(f"/v/{marks.code(1)}/report", content_type="multipart/form-data",
                        data={"token": token_sent, "description": "同一个标签出现在五盒茶叶上", "shop_name": "某市场"})
        assert r.status_code == status and r.mimetype == "text/html"
        _page_runs_only_its_own_inline_code(r)


def test_other_public_answers_allow_nothing_at_all(world, client, marks):
    """Do the JSON verdicts, the resolver's redirects and linksets, the product JSON and the icon carry a CSP that
    allows nothing (default-src 'none', no nonce) and X-Frame-Options: DENY?"""
    for path, headers in ((f"/v/{marks.code(1)}", JSON), (f"/v/{forged(marks.code(1))}", JSON),
                          (f"/01/{GTIN}/21/{marks.serial(1)}?v={marks.tag(1)}", {}),
                          (f"/01/{GTIN}/21/{marks.serial(1)}?v={marks.tag(1)}&linkType=linkset", {}),
                          (f"/01/{GTIN}", {}), (f"/p/{GTIN}", JSON), ("/favicon.ico", {}),
                          ("/.well-known/gs1resolver", {})):
        r = client.get(path, headers=headers)
        assert r.status_code in (200, 307, 404), path
        policy = _strict(r)
        assert "nonce" not in policy and "script-src" not in policy, path


def test_the_rate_limit_page_keeps_its_style_by_its_hash(database, tmp_path, world):
    """Does the rate limiter's 429 page on /v/ (not rendered by the verification views) get a policy that allows
    its own inline stylesheet by its hash and nothing else?"""
    import base64
    import hashlib

    settings = finalize(Settings(env="test", instance_path=tmp_path / "limited", database_url=database.url,
                                 secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR,
                                 public_base_url="http://gi.test", ratelimit_verify="1/hour",
                                 ratelimit_storage_url="memory://"))
    limited = create_app(settings)
    try:
        c = limited.test_client()
        c.get("/v/NOT-A-CODE")
        r = c.get("/v/NOT-A-CODE")
        assert r.status_code == 429 and r.mimetype == "text/html"
        [css] = re.findall(r"<style>(.*?)</style>", r.get_data(as_text=True), re.S)
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        policy = _strict(r)
        assert f"style-src 'sha256-{digest}'" in policy and "script-src" not in policy
    finally:
        limited.extensions["gi_checklog"].flush()
        limited.extensions["gi_engine"].dispose()


def test_the_icon_is_served_and_cached(client):
    """Does /favicon.ico answer an icon (16 and 32 px at least) that browsers may cache, to GET and HEAD?"""
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.mimetype == "image/vnd.microsoft.icon"
    assert "max-age=604800" in r.headers["Cache-Control"] and "no-store" not in r.headers["Cache-Control"]
    icon = Image.open(io.BytesIO(r.data))
    assert icon.format == "ICO" and {(16, 16), (32, 32)} <= icon.info["sizes"]
    head = client.head("/favicon.ico")
    assert head.status_code == 200 and head.data == b""


# --- what the OpenAPI says ----------------------------------------------------------------------------------

def test_the_openapi_entries_say_what_the_public_answers_are(client):
    """Do the OpenAPI operations of /v/{code}, the resolver, the product page and the icon document the statuses
    they answer, their content types and the verdict document's shape (verdict always present, bilingual message)?"""
    paths = client.get("/openapi.json").json["paths"]
    verify = paths["/v/{code}"]["get"]
    assert set(verify["responses"]) >= {"200", "400", "404", "409", "410", "429", "451"}
    schema = verify["responses"]["200"]["content"]["application/json"]["schema"]
    assert "verdict" in schema["required"] and "reason" in schema["required"]
    assert "text/html" in verify["responses"]["200"]["content"]
    assert schema["properties"]["message"]["required"] == ["zh", "en"]
    assert set(schema["properties"]["verdict"]["enum"]) == {v.value for v in Verdict}
    assert "every verdict answer" in schema["description"].lower()
    assert {p["name"] for p in verify["parameters"]} >= {"code", "lang", "lot"}
    resolver = paths["/01/{dl_path}"]["get"]
    assert set(resolver["responses"]) >= {"200", "307", "400", "404", "429"}
    assert list(resolver["responses"]["200"]["content"])[0] == "application/linkset+json"
    assert "linkset" in resolver["responses"]["200"]["content"]["application/linkset+json"]["schema"]["required"]
    product = paths["/p/{gtin}"]["get"]
    assert set(product["responses"]) >= {"200", "400", "404"}
    assert "products" in product["responses"]["200"]["content"]["application/json"]["schema"]["required"]
    icon = paths["/favicon.ico"]["get"]
    assert list(icon["responses"]["200"]["content"]) == ["image/vnd.microsoft.icon"]
