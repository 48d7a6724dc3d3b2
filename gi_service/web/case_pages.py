"""Supervision pages: the clue queue, cases (opened from clues and findings, investigated, referred to the
production place, concluded with the measure taken) and credit (the serious-violator list, a producer's credit
record, lifting a suspension, delisting after credit repair).

Every view calls the services the API calls (``services.clues``, ``services.cases``, ``services.credit``), so
who may read and change what is exactly the API's: only a case's owner moves it on, parties read it, an
authority outside the GI's jurisdiction cannot lift its suspensions; a refusal is shown on the page with its
reason and the API's status code.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, request

from ..db import get_session
from ..errors import GIError, NotFound, ValidationFailed
from ..http.answers.credit import violators_file
from ..http.files import XLSX, photo_thumbnail, stored_photo
from .. import clock
from ..i18n import t
from ..models import (AlertKind, CaseOutcome, CaseStatus, ClueKind, ClueStatus, GIProduct, OrgKind, Organisation,
                      ViolationKind)
from ..services import cases, clues, credit, findings, producers, scans
from . import bp
from .framework import (ANY_KIND, AUTHORITY, INSPECTION, MAX_ID, F, Field, Form, commit, done, page, problem, render,
                        rollback)
from .names import gi_names, org_names, user_names

SUPERVISORS = (AUTHORITY, INSPECTION)
LIST_LIMIT = 50
QUEUES = ("mine", "party", "all")
CLUE_STATUSES = ("open", "acknowledged", "dismissed")  # what a person may set (routed/in a case: the services')
REASON = F.text(1000)


def _ids_field(what: str) -> Any:
    return Field({"type": "string", "pattern": "(^|[\\s,，])[0-9]+([\\s,，]|$)",
                  "description": f"{what} numbers: the field repeated, or numbers separated by commas or spaces "
                                 "(anything else in it is ignored); one that names nothing, or that the caller may "
                                 f"not see, is refused with 404 or 403; at most {cases.MAX_EVIDENCE} pieces of "
                                 "evidence (422 too_much_evidence)"}, False)


def _evidence_rule(*names: str) -> dict[str, Any]:
    """A case needs evidence: at least one of the fields, with a number in it (else 422 no_evidence)."""
    return {"anyOf": [{"required": [name]} for name in names]}


def _ids(name: str) -> list[int]:
    """Selected ids (repeated field, or one field with ids separated by commas or spaces); a number too large to
    be an id names nothing (404)."""
    out: list[int] = []
    for raw in request.values.getlist(name):
        for part in raw.replace(",", " ").replace("，", " ").split():
            if part.isdecimal() and int(part) not in out:
                if int(part) > MAX_ID:
                    what = "clue" if name.startswith("clue") else "finding"
                    raise NotFound(f"{what} {part} does not exist", code=f"{what}_not_found")
                out.append(int(part))
    return out


# --- clues ----------------------------------------------------------------------------------------------

def _enum(kind, value):
    return kind(value) if value in kind._value2member_map_ else None


@page("/app/clues", "clues", kinds=SUPERVISORS,
      summary="The clue queue: copied-label alerts and consumers' reports routed to the caller's jurisdiction")
def clue_list(principal):
    db = get_session()
    wanted = request.args.get("status")
    if wanted is None:
        wanted = ClueStatus.open.value
    f = clues.ClueFilter(status=_enum(ClueStatus, wanted), kind=_enum(ClueKind, request.args.get("kind")),
                         alert_kind=_enum(AlertKind, request.args.get("alert_kind")))
    rows, total = clues.list_clues(db, principal, f, limit=LIST_LIMIT, offset=0)
    return render("app/clues.html", rows=rows, total=total, limit=LIST_LIMIT, state=wanted,
                  statuses=list(ClueStatus), kind=request.args.get("kind") or "", kinds=list(ClueKind),
                  gis=gi_names(db, (c.gi_id for c in rows)), orgs=org_names(db, (c.producer_id for c in rows)),
                  place=scans.place)


def _clue_page(principal, clue_id: int, *, error: str | None = None, form=None, status: int = 200):
    db = get_session()
    clue = clues.get_clue(db, clue_id, principal)
    data = clues.serialize(clue, gi_names=clues.gi_names(db, [clue]))
    return render("app/clue.html", status=status, clue=clue, data=data,
                  producer=org_names(db, [clue.producer_id]).get(clue.producer_id),
                  by=user_names(db, [clue.status_by_id]).get(clue.status_by_id), error=error, form=form or {},
                  place=scans.place)


@page("/app/clues/<id:clue_id>", "clue", kinds=SUPERVISORS,
      summary="One clue with its evidence (the consumer's report and photo) and the places it is routed to")
def clue_detail(principal, clue_id: int):
    return _clue_page(principal, clue_id)


@page("/app/clues/<id:clue_id>/status", "clue_status", kinds=SUPERVISORS, methods=("POST",),
      summary="Acknowledge, dismiss or reopen a clue, with the reason",
      form={"reason": REASON, "status": F.choice(CLUE_STATUSES)})
def clue_status(principal, clue_id: int):
    form = Form()
    reason = form.text("reason", t("reason"), max_len=1000)
    to = request.form.get("status") or ""
    try:
        form.check()
        if to not in CLUE_STATUSES:
            raise ValidationFailed(f"choose open, acknowledged or dismissed (got {to!r})",
                                   details=[{"field": "status", "problem": "not settable"}])
        clues.set_status(get_session(), clue_id, principal, ClueStatus(to), reason)
        commit()
    except GIError as exc:
        rollback()
        return _clue_page(principal, clue_id, error=problem(exc), form=request.form, status=int(exc.status))
    return done(t("clue_now", status=t("clue_" + to)), "web.clue", clue_id=clue_id)


@page("/app/clues/<id:clue_id>/photo.jpg", "clue_photo", kinds=SUPERVISORS, content_type="image/jpeg",
      summary="The photo of a consumer's report (as the API); ?thumb=1 for a small copy")
def clue_photo(principal, clue_id: int):
    data, report = clues.report_photo(get_session(), current_app.extensions["gi_storage"], clue_id, principal)
    if request.args.get("thumb") == "1":
        return photo_thumbnail(data)
    return stored_photo(data, report.photo_sha256)


# --- opening a case -----------------------------------------------------------------------------------------

def _evidence(db, principal, clue_ids: list[int], finding_ids: list[int]):
    """The selected clues and findings the caller may see (the service checks again when opening)."""
    chosen_clues = [clues.get_clue(db, cid, principal) for cid in clue_ids]
    chosen_findings = [findings.get_finding(db, fid, principal) for fid in finding_ids]
    return chosen_clues, chosen_findings


def _new_case_page(principal, *, error: str | None = None, form=None, status: int = 200):
    db = get_session()
    clue_ids, finding_ids = _ids("clue_id"), _ids("finding_id")
    chosen_clues, chosen_findings = _evidence(db, principal, clue_ids, finding_ids)
    producer_ids = list(dict.fromkeys(
        [c.producer_id for c in chosen_clues if c.producer_id] + [f.producer_id for f in chosen_findings if f.producer_id]
        + [code.producer_id for f in chosen_findings for code in f.codes if code.producer_id]))
    gi_ids = list(dict.fromkeys([x.gi_id for x in (*chosen_clues, *chosen_findings) if x.gi_id]))
    gis = gi_names(db, gi_ids)
    title = ""
    if chosen_findings:
        f = chosen_findings[0]
        title = f"{gis.get(f.gi_id, '')} · {f.premises_name}".strip(" ·")
    elif chosen_clues:
        title = chosen_clues[0].summary[:200]
    prefill = form or {"title": title}
    return render("app/case_new.html", status=status, clues=chosen_clues, findings=chosen_findings,
                  producers=org_names(db, producer_ids), gis=gis, form=prefill, error=error,
                  place=scans.place)


@page("/app/cases/new", "case_new", kinds=SUPERVISORS, methods=("GET", "POST"),
      summary="Open a case from selected clues and findings (?clue_id=&finding_id=, repeated); it goes into the "
              "caller's queue",
      form={"title": F.text(200), "reason": REASON, "note": F.text(1000, required=False),
            "producer_id": F.ident(required=False, description="the producer concerned (default: from the evidence)"),
            "gi_id": F.ident(required=False, description="the GI concerned (default: from the evidence)"),
            "clue_id": _ids_field("clue"), "finding_id": _ids_field("finding"),
            "join_other_cases": F.flag("evidence already in another open case may join this one too")},
      form_rules=_evidence_rule("clue_id", "finding_id"))
def case_new(principal):
    if request.method == "GET":
        return _new_case_page(principal)
    form = Form()
    title = form.text("title", t("case_title_field"), max_len=200)
    reason = form.text("reason", t("reason"), max_len=1000)
    note = form.text("note", t("note"), required=False, max_len=1000)
    producer_id = form.integer("producer_id", t("producer"), required=False, lo=1, hi=MAX_ID)
    gi_id = form.integer("gi_id", t("gi"), required=False, lo=1, hi=MAX_ID)
    try:
        form.check()
        case = cases.open_case(get_session(), principal, title=title, reason=reason, clue_ids=_ids("clue_id"),
                               finding_ids=_ids("finding_id"), producer_id=producer_id, gi_id=gi_id,
                               join_other_cases=request.form.get("join_other_cases") == "yes", note=note)
        case_id, number = case.id, case.number
        commit()
    except GIError as exc:
        rollback()
        return _new_case_page(principal, error=problem(exc), form=request.form, status=int(exc.status))
    return done(t("case_opened", number=number), "web.case", case_id=case_id)


# --- the case queue and a case -------------------------------------------------------------------------------

@page("/app/cases", "cases", kinds=SUPERVISORS,
      summary="The case queue: cases the caller owns (mine), those it is a party to (party), or all it may see")
def case_list(principal):
    db = get_session()
    queue = request.args.get("queue") or "mine"
    if queue not in QUEUES:
        queue = "mine"
    state = request.args.get("status") or ""
    f = cases.CaseFilter(queue=queue, status=_enum(CaseStatus, state))
    rows, total = cases.list_cases(db, principal, f, limit=LIST_LIMIT, offset=0)
    return render("app/cases.html", rows=rows, total=total, limit=LIST_LIMIT, queue=queue, queues=QUEUES,
                  state=state, statuses=list(CaseStatus), gis=gi_names(db, (c.gi_id for c in rows)),
                  orgs=org_names(db, [*(c.producer_id for c in rows), *(c.owner_org_id for c in rows)]),
                  place=scans.place)


def _case_page(principal, case_id: int, *, error: str | None = None, error_at: str | None = None, form=None,
               status: int = 200):
    db = get_session()
    case = cases.get_case(db, case_id, principal)
    data = cases.serialize(db, case, principal, full=True)
    finding_items = [e["finding"] for e in data["evidence"] if e["kind"] == "finding"]
    orgs = org_names(db, [*(f["organisation_id"] for f in finding_items), *(f["producer_id"] for f in finding_items)])
    gis = gi_names(db, [f["gi_id"] for f in finding_items])
    users = user_names(db, [e["by"] for e in data["events"]] + [c["by"] for c in data["credit"]])
    refer_to = None
    if "referred" in data["allowed_transitions"] and case.producer_id:
        producer = db.get(Organisation, case.producer_id)
        target = cases.production_authority(db, producer.adcode)
        refer_to = target.name if target is not None and target.id != case.owner_org_id else None
    return render("app/case.html", status=status, case=case, data=data, orgs=orgs, gis=gis, users=users,
                  refer_to=refer_to, violations=list(ViolationKind), outcomes=list(CaseOutcome), error=error,
                  error_at=error_at, form=form or {}, place=scans.place,
                  can_credit=case.producer_id is not None)


@page("/app/cases/<id:case_id>", "case", kinds=SUPERVISORS,
      summary="One case: its evidence (clues; findings with their photos), parties, event log, credit consequences, "
              "and the owner's next steps", note="the owner, the parties and supervisors covering them")
def case_detail(principal, case_id: int):
    return _case_page(principal, case_id)


def _case_action(principal, case_id: int, where: str, action, message: str):
    form = Form()
    reason = form.text("reason", t("reason"), max_len=1000)
    try:
        form.check()
        case = action(get_session(), form, reason)
        number = case.number
        commit()
    except GIError as exc:
        rollback()
        return _case_page(principal, case_id, error=problem(exc), error_at=where, form=request.form,
                          status=int(exc.status))
    return done(t(message, number=number), "web.case", case_id=case_id)


@page("/app/cases/<id:case_id>/investigate", "case_investigate", kinds=SUPERVISORS, methods=("POST",),
      summary="Start (or, after a referral, take up) the investigation, with the reason", note="the case's owner",
      form={"reason": REASON})
def case_investigate(principal, case_id: int):
    return _case_action(principal, case_id, "investigate",
                        lambda db, form, reason: cases.start_investigation(db, case_id, principal, reason=reason),
                        "case_investigating_ok")


@page("/app/cases/<id:case_id>/refer", "case_refer", kinds=SUPERVISORS, methods=("POST",),
      summary="Refer the case with its evidence to the production place's authority, with the reason",
      note="the case's owner", form={"reason": REASON})
def case_refer(principal, case_id: int):
    return _case_action(principal, case_id, "refer",
                        lambda db, form, reason: cases.refer_case(db, case_id, principal, reason=reason),
                        "case_referred_ok")


@page("/app/cases/<id:case_id>/conclude", "case_conclude", kinds=SUPERVISORS, methods=("POST",),
      summary="Conclude: violation confirmed (with the measure taken and the kinds; the credit rules apply) or no "
              "violation, with the reason", note="the case's owner",
      form={"reason": REASON, "outcome": F.choice([o.value for o in CaseOutcome]),
            "measure": F.text(4000, required=False, description="the measure taken (with a confirmed violation)"),
            "violations": F.choices([k.value for k in ViolationKind], description="the kinds of violation confirmed"),
            "producer_not_at_fault": F.flag("the producer is not at fault (its credit is not affected)")})
def case_conclude(principal, case_id: int):
    def action(db, form: Form, reason):
        outcome = request.form.get("outcome") or ""
        if outcome not in CaseOutcome._value2member_map_:
            form._fail("outcome", "required_field", t("outcome"))
        measure = form.text("measure", t("measure"), required=False, max_len=4000)
        given = request.form.getlist("violations")
        if any(k not in ViolationKind._value2member_map_ for k in given):
            form._fail("violations", "out_of_range", t("violations"))
        form.check()
        chosen = list(dict.fromkeys(given))
        return cases.conclude_case(db, case_id, principal, outcome=CaseOutcome(outcome), reason=reason,
                                   rules=current_app.extensions["gi_credit_rules"], measure=measure,
                                   violations=chosen or None,
                                   producer_at_fault=request.form.get("producer_not_at_fault") != "yes")
    return _case_action(principal, case_id, "conclude", action, "case_concluded_ok")


@page("/app/cases/<id:case_id>/evidence", "case_evidence", kinds=SUPERVISORS, methods=("POST",),
      summary="Add clues or findings (their numbers) to a case that is not concluded, with the reason",
      note="the case's owner",
      form={"reason": REASON, "clue_ids": _ids_field("clue"), "finding_ids": _ids_field("finding"),
            "note": F.text(1000, required=False),
            "join_other_cases": F.flag("evidence already in another open case may join this one too")},
      form_rules=_evidence_rule("clue_ids", "finding_ids"))
def case_evidence(principal, case_id: int):
    def action(db, form: Form, reason):
        clue_ids, finding_ids = _ids("clue_ids"), _ids("finding_ids")
        note = form.text("note", t("note"), required=False, max_len=1000)
        form.check()
        return cases.add_evidence(db, case_id, principal, clue_ids=clue_ids, finding_ids=finding_ids, reason=reason,
                                  note=note, join_other_cases=request.form.get("join_other_cases") == "yes")
    return _case_action(principal, case_id, "evidence", action, "case_evidence_added")


# --- credit --------------------------------------------------------------------------------------------------

@page("/app/credit", "credit", kinds=ANY_KIND,
      summary="The serious-violator list (current entries; supervisors may show the delisted too), with delisting "
              "after the credit repair period")
def credit_list(principal):
    db = get_session()
    history = request.args.get("history") == "1" and principal.org_kind in credit.SUPERVISORS
    rows, total = credit.list_serious_violators(db, include_delisted=history, limit=200)
    return render("app/credit.html", rows=rows, total=total, history=history, place=scans.place,
                  can_delist=principal.org_kind == OrgKind.authority)


@page("/app/credit/export", "credit_export", kinds=ANY_KIND, content_type="text/csv", alt_content_types=(XLSX,),
      query={"format": ("csv (default) or xlsx", {"type": "string", "enum": ["csv", "xlsx"]}),
             "history": ("1: with the delisted entries (authorities and inspection units)", {"type": "string"})},
      responses={422: "a format other than csv or xlsx"},
      summary="The serious-violator list as the page shows it, as CSV or Excel (as GET /api/v1/serious-violators"
              "?format=csv|xlsx)")
def credit_export(principal):
    history = request.args.get("history") == "1" and principal.org_kind in credit.SUPERVISORS
    fmt = request.args.get("format") or "csv"
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed(f"format must be csv or xlsx, not {fmt[:20]!r}",
                               details=[{"field": "format", "problem": "csv or xlsx"}])
    return violators_file(get_session(), fmt, include_delisted=history)


@page("/app/serious-violators/<id:listing_id>/delist", "credit_delist", kinds=(AUTHORITY,), methods=("POST",),
      summary="Take a producer off the serious-violator list after its credit repair period, with the reason",
      note="an authority covering the producer's registered place", form={"reason": REASON})
def credit_delist(principal, listing_id: int):
    form = Form()
    reason = form.text("reason", t("reason"), max_len=1000)
    db = get_session()
    try:
        form.check()
        credit.delist(db, listing_id, reason=reason, by=principal)
        commit()
    except GIError as exc:
        rollback()
        rows, total = credit.list_serious_violators(db, limit=200)
        return render("app/credit.html", status=int(exc.status), rows=rows, total=total, history=False,
                      place=scans.place, can_delist=True, error=problem(exc), error_at=f"listing-{listing_id}",
                      form=request.form)
    return done(t("delisted_ok"), "web.credit")


def _credit_page(principal, producer_id: int, *, error: str | None = None, error_at: str | None = None, form=None,
                 status: int = 200):
    db = get_session()
    record = credit.credit_record(db, producer_id, by=principal)
    liftable = set()
    if principal.org_kind == OrgKind.authority:
        from ..services.registry import can_manage_gi

        for a in record["authorizations"]:
            if a["status"] == "suspended" and can_manage_gi(db, principal, db.get(GIProduct, a["gi_id"])):
                liftable.add(a["id"])
    producer = producers.get_producer(db, producer_id)
    return render("app/producer_credit.html", status=status, record=record, producer=producer, liftable=liftable,
                  users=user_names(db, [e["by"] for e in record["entries"]]),
                  gis=gi_names(db, [e["gi_id"] for e in record["entries"]]), place=scans.place(producer.adcode),
                  error=error, error_at=error_at, form=form or {})


@page("/app/producers/<id:producer_id>/credit", "producer_credit", kinds=ANY_KIND,
      summary="A producer's credit record: confirmed violations, suspensions, voided marks, listings",
      note="the producer itself, and authorities and inspection units covering its place")
def producer_credit(principal, producer_id: int):
    return _credit_page(principal, producer_id)


@page("/app/producers/<id:producer_id>/credit/lift", "suspension_lift", kinds=(AUTHORITY,), methods=("POST",),
      summary="Lift a suspension: the authorization is approved again (voided marks stay voided, a listing stays)",
      note="the authority managing the GI", form={"gi_id": F.ident(), "reason": REASON})
def suspension_lift(principal, producer_id: int):
    form = Form()
    gi_id = form.integer("gi_id", t("gi"), lo=1, hi=MAX_ID)
    reason = form.text("reason", t("reason"), max_len=1000)
    try:
        form.check()
        credit.lift_suspension(get_session(), producer_id, gi_id=gi_id, reason=reason, by=principal)
        commit()
    except GIError as exc:
        rollback()
        return _credit_page(principal, producer_id, error=problem(exc), error_at=f"lift-{gi_id}", form=request.form,
                            status=int(exc.status))
    return done(t("suspension_lifted"), "web.producer_credit", producer_id=producer_id)


@bp.app_template_filter("iso_china")
def iso_china(value: str | None) -> str:
    """An ISO time as the services serialize it (UTC), as people in China read it."""
    if not value:
        return "—"
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(clock.CHINA_TZ).strftime("%Y-%m-%d %H:%M")
