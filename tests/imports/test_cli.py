"""`gi-service import producers|authorizations|plots FILE --as USER [--dry-run]`: the same import from the
command line, with a progress bar, the problems listed one a line and the exit status saying whether all is well."""
from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from gi_service.cli import main
from gi_service.models import OrgKind, Organisation
from gi_service.services.uscc import make_uscc

from .conftest import PRODUCER_HEADER, csv_bytes, xlsx


def run(database, tmp_path, *args):
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path)}
    return CliRunner().invoke(main, ["import", *args], env=env, catch_exceptions=False)


def uscc(n: int) -> str:
    return make_uscc("9", "1", "341602", f"QX{n:06d}")


def test_import_from_the_command_line(world, database, tmp_path, session):
    """Does a dry run list each bad row (exit 1, nothing written), a good file import with a progress bar and its
    counts (exit 0), a second run change nothing, and an unknown account, a producer's account or a damaged file
    stop with the reason?"""
    name = world.authority.principal.username
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx([PRODUCER_HEADER, ["亳州市芍花堂饮片有限公司", uscc(1)[:17] + "0", None, None],
                          ["谯城区合作社", uscc(2), None, None]]))
    result = run(database, tmp_path, "producers", str(bad), "--as", name, "--dry-run")
    assert result.exit_code == 1
    assert "row 2\tuscc\tinvalid_uscc\tUSCC position 18" in result.stdout
    assert "2 rows, 1 to create, 0 unchanged, 1 with problems (nothing written)" in result.stderr
    session.rollback()
    assert session.scalar(select(Organisation.id).where(Organisation.kind == OrgKind.producer)) is None

    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([["名称", "统一社会信用代码"], ["亳州市芍花堂饮片有限公司", uscc(1)],
                                ["谯城区合作社", uscc(2)]], "gb18030"))
    report = tmp_path / "report.json"
    result = run(database, tmp_path, "producers", str(good), "--as", name, "--report", str(report))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("importing producers")   # the progress bar's label (a bar on a terminal)
    assert "2 rows, 2 created, 0 unchanged, 0 with problems (written)" in result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["written"] is True and data["encoding"] == "gb18030"
    session.rollback()
    assert len(session.scalars(select(Organisation).where(Organisation.kind == OrgKind.producer)).all()) == 2
    result = run(database, tmp_path, "producers", str(good), "--as", name)
    assert result.exit_code == 0 and "0 created, 2 unchanged" in result.stderr
    # The HTTP limits bound the command too, unless it is told otherwise.
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path), "GI_IMPORT_MAX_ROWS": "1"}
    result = CliRunner().invoke(main, ["import", "producers", str(good), "--as", name], env=env)
    assert result.exit_code != 0 and "too_many_rows" in result.output
    result = CliRunner().invoke(main, ["import", "producers", str(good), "--as", name, "--max-rows", "2"], env=env)
    assert result.exit_code == 0, result.output

    session.rollback()     # end the read above: the runs since wrote
    producer = world.factory.producer("341602")
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(b"PK\x03\x04garbage")
    for args, message in ((("producers", str(good), "--as", "nobody"), "no active user"),
                          (("producers", str(good), "--as", producer.principal.username), "wrong_role"),
                          (("producers", str(damaged), "--as", name), "unreadable_file")):
        result = run(database, tmp_path, *args)
        assert result.exit_code not in (0, None) and message in result.output, (args, result.output)
