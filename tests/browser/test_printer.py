"""The printer's main flow on a phone: its print orders, the print-file download (a ledger event), and
recording printed, spoiled and issued marks."""
from __future__ import annotations

import csv
import re

from playwright.sync_api import expect
from sqlalchemy import func, select

from gi_service.codes import parse_serial
from gi_service.models import BatchStatus, LedgerEvent, MarkBatch, MarkRange, MarkState
from gi_service.services import marks

from .conftest import fresh, no_horizontal_scroll


def _serial(batch: dict, offset: int) -> str:
    seq = parse_serial(batch["first_serial"]).seq + offset
    return marks.span_serials(batch["series"], seq, seq)[0]


def _counts(session, batch_id: int) -> dict[MarkState, int]:
    fresh(session)
    rows = session.execute(select(MarkRange.state, func.sum(MarkRange.seq_end - MarkRange.seq_start + 1))
                           .where(MarkRange.batch_id == batch_id).group_by(MarkRange.state)).all()
    return {state: int(n) for state, n in rows}


def test_printer_downloads_the_file_and_records_printed_spoiled_and_issued(phone, factory, client, session, ledger_world):
    """On a phone, does the printer find its order, download the print file (recorded in the ledger, a repeat
    flagged), record the run with a spoiled serial, write off another from stock, and issue the rest?"""
    world = ledger_world()
    batch = world.approve(world.request(quantity=20)["id"])
    page = phone.login(world.printer)
    assert page.locator("#count-orders_to_print .n").inner_text() == "1"
    page.click(f"a[href$='/app/batches/{batch['id']}']")
    page.wait_for_url(re.compile(rf"/app/batches/{batch['id']}$"))
    assert no_horizontal_scroll(page)
    # The page follows the work: download the print file, print, then record the run.
    assert page.locator("#print-file").bounding_box()["y"] < page.locator("#printed").bounding_box()["y"]

    page.select_option("#print-file select[name=format]", "csv")
    with page.expect_download() as download:
        page.click("#print-file button[type=submit]")
    assert download.value.suggested_filename == f"order-{batch['id']}.csv"
    with open(download.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["serial"] for r in rows] == [_serial(batch, i) for i in range(20)]
    assert all(r["url"].startswith("http://gi.test/v/") for r in rows)
    fresh(session)
    assert session.get(MarkBatch, batch["id"]).print_downloads == 1
    assert session.scalar(select(func.count()).select_from(LedgerEvent)
                          .where(LedgerEvent.kind == "print_file_downloaded")) == 1

    page.reload()
    page.fill("#printed textarea[name=spoiled]", _serial(batch, 1))
    page.fill("#printed input[name=note]", "卡纸")
    page.click("#printed button[type=submit]")
    assert "已登记印制完成" in page.locator(".flash.ok").inner_text()
    assert _counts(session, batch["id"]) == {MarkState.printed: 19, MarkState.spoiled: 1}
    assert "卡纸" in page.locator("#ranges li.range.st-spoiled").inner_text()   # the note says what spoiled it
    assert "卡纸" not in page.locator("#ranges li.range.st-printed").first.inner_text()

    page.fill("#spoiled textarea[name=ranges]", _serial(batch, 2))
    page.fill("#spoiled input[name=reason]", "裁切损坏")
    page.click("#spoiled button[type=submit]")
    assert "已报废 1 枚" in page.locator(".flash.ok").inner_text()

    page.click("#issue button[type=submit]")
    assert "已发放 18 枚" in page.locator(".flash.ok").inner_text()
    assert _counts(session, batch["id"]) == {MarkState.issued: 18, MarkState.spoiled: 2}
    assert session.get(MarkBatch, batch["id"]).status == BatchStatus.issued
    expect(page.locator("#ranges li.range.st-spoiled")).to_have_count(2)
    assert no_horizontal_scroll(page)

    with page.expect_download() as again:
        page.click("#print-file button[type=submit]")  # PDF this time
    with open(again.value.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"
    page.reload()
    assert "重复下载" in page.locator("#downloads").inner_text()


def test_spoiled_serials_outside_the_batch_are_refused_on_the_form(phone, factory, client, session, ledger_world):
    """Is a print run listing a spoiled serial of another batch refused on the form with the reason, recording
    nothing?"""
    world = ledger_world()
    other = world.approve(world.request(quantity=5)["id"])
    batch = world.approve(world.request(quantity=5)["id"])
    page = phone.login(world.printer)
    page.goto(phone.base + f"/app/batches/{batch['id']}")
    page.fill("#printed textarea[name=spoiled]", other["first_serial"])
    with page.expect_response(re.compile(r"/printed$")) as answer:
        page.click("#printed button[type=submit]")
    assert answer.value.status == 422
    assert "不属于本批次" in page.locator("#form-error").inner_text()
    assert page.locator("#form-error").is_visible()
    assert page.locator("#printed textarea[name=spoiled]").input_value() == other["first_serial"]
    assert _counts(session, batch["id"]) == {MarkState.allocated: 5}
