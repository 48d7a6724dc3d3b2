"""`gi-service reports annual rollup|listing`: the provincial office's files from the command line."""
from __future__ import annotations

import json

from click.testing import CliRunner

from gi_service.cli import main

from .conftest import API, cst, ok


def run(database, tmp_path, *args):
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path)}
    return CliRunner().invoke(main, ["reports", "annual", *args], env=env, catch_exceptions=False)


def test_rollup_and_listing_from_the_command_line(season, database, tmp_path):
    """Does the command write the same rollup CSV and PDF as the API, list who is overdue as JSON, and refuse
    an unknown account, a producer's account and a year that is not over, saying why?"""
    season.clock.set(cst(2026, 1, 20, 9, 0))
    url = f"{API}/annual-reports/2025/mine"
    ok(season.client.patch(url, headers=season.producer.headers, json={"output_kg": 10, "output_value_yuan": 300}))
    ok(season.client.post(f"{url}/submit", headers=season.producer.headers))
    authority = season.authority.principal.username
    season.clock.set(cst(2026, 2, 20, 9, 0))

    out = tmp_path / "rollup.csv"
    result = run(database, tmp_path, "rollup", "--as", authority, "--year", "2025", "--out", str(out))
    assert result.exit_code == 0, result.output
    api = season.client.get(f"{API}/annual-reports/rollup", headers=season.authority.headers,
                            query_string={"year": 2025, "format": "csv"})
    assert out.read_bytes() == api.data and out.read_bytes().startswith(b"\xef\xbb\xbf")
    pdf = tmp_path / "rollup.pdf"
    assert run(database, tmp_path, "rollup", "--as", authority, "--format", "pdf", "--out", str(pdf)).exit_code == 0
    assert pdf.read_bytes().startswith(b"%PDF")

    result = run(database, tmp_path, "listing", "--as", authority, "--format", "json", "--status", "submitted")
    data = json.loads(result.output)
    assert data["year"] == 2025 and [r["producer"]["id"] for r in data["items"]] == [season.producer.org.id]

    for args, message in ((("rollup", "--as", "nobody"), "no active user"),
                          (("rollup", "--as", season.producer.principal.username), "wrong_role"),
                          (("rollup", "--as", authority, "--year", "2026"), "year_not_over"),
                          (("rollup", "--as", authority, "--format", "pdf"), "needs --out")):
        result = run(database, tmp_path, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
