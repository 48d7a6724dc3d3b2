"""Reading back the Excel workbooks the service writes (openpyxl), for the tests of every download."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import openpyxl

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Sheet:
    ws: Any
    header: list[str]
    rows: list[list[Any]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.header, row)) for row in self.rows]

    def cell(self, row: int, key: str):
        """The openpyxl cell of data row `row` (0-based) in the column whose header ends with "(key)" or is key."""
        col = next(i for i, h in enumerate(self.header) if h == key or h.endswith(f"({key})"))
        return self.ws.cell(row=row + 2, column=col + 1)


def read_xlsx(data: bytes) -> Sheet:
    """The only sheet of a workbook, its header row and its data rows (values as openpyxl reads them)."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert len(wb.worksheets) == 1
    ws = wb.worksheets[0]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    return Sheet(ws, [str(h) for h in values[0]], values[1:])


def read_download(response) -> Sheet:
    """A download answered as a workbook: its media type, an attachment's .xlsx file name, and its sheet."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == XLSX
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and disposition.endswith('.xlsx"'), disposition
    return read_xlsx(response.data)
