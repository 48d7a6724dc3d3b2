"""Bulk imports: an authority of Bozhou (341600) with a GI whose area is 谯城区 (341602), files made in the test."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest
import shapely

from tests.factories import square

API = "/api/v1"


def xlsx(rows: list[list[Any]], *, title: str = "Sheet") -> bytes:
    """A workbook as a clerk's Excel would save it (openpyxl), its first row the header."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[Any]], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def with_member(data: bytes, name: str, content: bytes, *, compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The workbook `data` with member `name` replaced by (or added as) `content`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compress) as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info, src.read(info.filename))
        dst.writestr(name, content)
    return out.getvalue()


@dataclass
class World:
    client: Any
    factory: Any
    authority: Any
    gi: Any
    app: Any

    def post(self, kind: str, data: bytes, *, filename: str = "file.xlsx", dry_run: bool | None = None,
             actor=None, **fields):
        form: dict[str, Any] = {"file": (io.BytesIO(data), filename), **fields}
        if dry_run is not None:
            form["dry_run"] = "true" if dry_run else "false"
        return self.client.post(f"{API}/imports/{kind}", headers=(actor or self.authority).headers, data=form,
                                content_type="multipart/form-data")

    def boundary(self, side_m: float = 80.0, dx: float = 0.0, *, as_geojson: bool = False) -> str:
        p = self.factory.inside_point(self.gi)
        geom = square(p.x + dx, p.y, side_m)
        return json.dumps(shapely.geometry.mapping(geom)) if as_geojson else geom.wkt

    def limits(self, **overrides) -> None:
        self.app.config["GI_SETTINGS"] = self.app.config["GI_SETTINGS"].with_overrides(**overrides)


@pytest.fixture
def world(client, factory, app) -> World:
    authority = factory.authority("341600", name="亳州市市场监督管理局")
    gi = factory.gi(authority, name_zh="亳白芍", area_adcodes=("341602",))
    return World(client, factory, authority, gi, app)


PRODUCER_HEADER = ["名称 (name)", "统一社会信用代码 (uscc)", "行政区划代码 (adcode)", "联系人及电话 (contact)"]
