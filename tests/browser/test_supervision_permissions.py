"""The inspector's, supervision and report pages keep the API's permission rules: the wrong kind of account gets
the 403 page, a record outside the jurisdiction the 403 page with the reason, a write by someone who is not the
case's owner is refused without changing anything, and the pages' scripts get JSON refusals."""
from __future__ import annotations

from gi_service.models import Case, CaseStatus
from tests.cases.conftest import Story

from .conftest import fresh


def _token(page) -> str:
    return page.locator("header .logout input[name=csrf_token]").input_value()


def test_producers_and_printers_cannot_open_the_inspectors_or_the_supervision_pages(desktop, factory, client):
    """Are the scan page, findings, clues, cases and the authorities' annual-report listing closed (403) to a
    producer, and the producer's own annual report to a printer and an inspection unit?"""
    producer = factory.producer("341602")
    page = desktop.login(producer)
    for path in ("/app/scan", "/app/findings", "/app/findings/new", "/app/clues", "/app/cases",
                 "/app/annual-reports"):
        assert page.goto(desktop.base + path).status == 403, path
        assert page.locator("h1").inner_text() == "无权访问"
    assert page.request.get(desktop.base + "/app/scan/check?code=X").json()["error"] == "wrong_role"
    page.click("header .logout button")
    for actor in (factory.printer(), factory.inspection("440100")):
        page = desktop.login(actor, page)
        assert page.goto(desktop.base + "/app/annual-report").status == 403
        page.click("header .logout button")


def test_another_places_finding_and_a_case_not_owned_are_refused(desktop, factory, client, app, session):
    """Does Shanghai's inspection unit get the 403 page (outside the jurisdiction) for a Guangzhou finding and its
    case, and is a conclusion posted by a party that is not the owner refused (403, not_case_owner) with the case
    unchanged?"""
    story = Story(factory, client, app, session)
    finding_id = story.finding(story.gz)
    case = story.open(story.gz, finding_ids=[finding_id])
    story.step(story.gz, case["id"], "refer")          # now owned by 亳州's authority; Guangzhou is a party

    page = desktop.login(story.shanghai)
    response = page.goto(desktop.base + f"/app/findings/{finding_id}")
    assert response.status == 403 and "超出管辖范围" in page.locator(".error-page").inner_text()
    assert page.goto(desktop.base + f"/app/cases/{case['id']}").status == 403
    page.click("header .logout button")

    page = desktop.login(story.gz, page)
    assert page.goto(desktop.base + f"/app/cases/{case['id']}").status == 200   # a party reads it
    assert page.locator("#actions").count() == 0
    answer = page.request.post(desktop.base + f"/app/cases/{case['id']}/conclude",
                               form={"csrf_token": _token(page), "outcome": "no_violation", "reason": "越权结案"})
    assert answer.status == 403 and "只有承办单位可以办理" in answer.text()
    fresh(session)
    assert session.get(Case, case["id"]).status == CaseStatus.referred


def test_the_scripts_endpoints_answer_refusals_as_json(desktop, factory, client):
    """Do the endpoints the inspector's scripts call refuse as JSON: a batch without the CSRF header (400
    csrf_failed), a producer's batch (403 wrong_role), and the session endpoint when signed out (401)?"""
    inspector = factory.inspection("440100")
    page = desktop.login(inspector)
    no_token = page.request.post(desktop.base + "/app/findings/batch", data={"findings": []},
                                 headers={"Content-Type": "application/json"})
    assert no_token.status == 400 and no_token.json()["error"] == "csrf_failed"
    page.click("header .logout button")
    gone = page.request.get(desktop.base + "/app/session.json")
    assert gone.status == 401 and gone.json()["error"] == "unauthenticated"

    producer = factory.producer("341602")
    page = desktop.login(producer, page)
    refused = page.request.post(desktop.base + "/app/findings/batch", data={"findings": [{}]},
                                headers={"Content-Type": "application/json", "X-CSRF-Token": _token(page)})
    assert refused.status == 403 and refused.json()["error"] == "wrong_role"
