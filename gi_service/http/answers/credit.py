"""The serious-violator list as a file (CSV or Excel): ``GET /api/v1/serious-violators?format=`` and the list's page
(``/app/credit/export``) answer it, so a page's file is the API's byte for byte."""
from __future__ import annotations

from typing import Any, Iterator

from sqlalchemy.orm import Session

from ...render.csv import serious_violators_csv
from ...render.sheets import serious_violators_table
from ...services import credit
from ..files import download, spreadsheet

# A file holds the whole list; it is read in pages of this size.
FILE_PAGE = 1000


def violators_file(session: Session, fmt: str, *, include_delisted: bool = False, adcode: str | None = None,
                   producer_id: int | None = None):
    """Every entry matching the filters, newest first, as CSV (``fmt="csv"``) or Excel (``"xlsx"``)."""
    def items() -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            rows, _ = credit.list_serious_violators(session, include_delisted=include_delisted, adcode=adcode,
                                                    producer_id=producer_id, limit=FILE_PAGE, offset=offset)
            for s, p, c in rows:
                yield credit.listing_dict(s, producer=p, case_number=c.number, history=include_delisted)
            if len(rows) < FILE_PAGE:
                return
            offset += FILE_PAGE

    name = "serious-violators" + ("-history" if include_delisted else "") + (f"-{adcode}" if adcode else "") + \
        f".{fmt}"
    if fmt == "xlsx":
        return spreadsheet(serious_violators_table(items(), history=include_delisted), name)
    return download(serious_violators_csv(items(), history=include_delisted), "text/csv", name)
