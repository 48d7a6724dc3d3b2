"""The web pages keep the API's permission rules: wrong kind of account → the 403 page, another
organisation's record → the 404 page, and a forged write is refused by the service itself."""
from __future__ import annotations

import re

from sqlalchemy import select

from gi_service.models import MarkBatch, MarkRequest, RequestStatus

from .conftest import follow, fresh


def test_a_producer_opening_an_authority_page_gets_the_403_page(phone, factory, client, ledger_world):
    """Does a producer who opens the authority's producer register or request queue actions get the 403 page
    (in Chinese, with a way home), not the data?"""
    world = ledger_world()
    page = phone.login(world.producer)
    response = page.goto(phone.base + "/app/producers")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "无权访问"
    assert "producer" in page.locator(".error-page").inner_text()
    follow(page, "a:has-text('返回首页')")
    page.wait_for_url(re.compile(r"/app$"))


def test_a_printer_cannot_open_the_request_queue_or_a_producers_page(desktop, factory, client, ledger_world):
    """Are the request queue and the producers' pages closed to a printer (403)?"""
    world = ledger_world()
    page = desktop.login(world.printer)
    assert page.goto(desktop.base + "/app/requests").status == 403
    assert page.goto(desktop.base + f"/app/producers/{world.producer.org.id}").status == 403
    assert page.goto(desktop.base + "/app/marks").status == 403


def test_another_producers_batch_is_not_found_and_a_forged_approval_is_refused(desktop, factory, client, session, ledger_world):
    """Does a producer see another producer's batch as 'not found', and is an approval it forges with its own
    valid CSRF token refused (403) without approving anything?"""
    world = ledger_world()
    batch = world.approve(world.request(quantity=5)["id"])
    pending = world.request(quantity=5)
    other = factory.producer("341602")
    page = desktop.login(other)
    response = page.goto(desktop.base + f"/app/batches/{batch['id']}")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "未找到"
    token = page.locator("header .logout input[name=csrf_token]").input_value()
    forged = page.request.post(desktop.base + f"/app/requests/{pending['id']}/approve",
                               form={"csrf_token": token, "printer_id": str(world.printer.org.id)})
    assert forged.status == 403
    fresh(session)
    assert session.get(MarkRequest, pending["id"]).status == RequestStatus.requested
    assert len(session.scalars(select(MarkBatch)).all()) == 1


def test_an_authority_outside_the_gis_jurisdiction_cannot_decide_its_requests(desktop, factory, client, session, ledger_world):
    """Is an authority of another province shown no request of this GI, and refused (with the reason on the
    page) when it posts an approval anyway?"""
    world = ledger_world()
    pending = world.request(quantity=5)
    hangzhou = factory.authority("330100")
    page = desktop.login(hangzhou)
    page.goto(desktop.base + "/app/requests")
    assert page.locator(f"#req-{pending['id']}").count() == 0
    token = page.locator("header .logout input[name=csrf_token]").input_value()
    answer = page.request.post(desktop.base + f"/app/requests/{pending['id']}/approve", form={"csrf_token": token})
    assert answer.status == 403
    assert "超出管辖范围" in answer.text()
    fresh(session)
    assert session.get(MarkRequest, pending["id"]).status == RequestStatus.requested


def test_an_unknown_page_is_the_404_page(desktop, factory):
    """Does a mistyped address under /app answer the web's 404 page?"""
    page = desktop.login(factory.inspection("341600"))
    response = page.goto(desktop.base + "/app/no-such-page")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "未找到"
