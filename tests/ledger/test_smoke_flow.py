from tests.factories import LedgerWorld


def test_full_lifecycle_smoke(client, factory):
    """Does a batch go request -> approve -> print -> issue -> activate -> void with the ledger intact?"""
    w = LedgerWorld(factory, client)
    assert 5200 < w.account["base_kg"] < 5300
    batch = w.printed_and_issued(1000, spoiled=[])
    first = batch["first_serial"]
    ranges = batch["ranges"]
    assert [r["state"] for r in ranges] == ["issued"]
    r = client.post("/api/v1/activations", headers=w.producer.headers,
                    json={"ranges": [{"first": first, "last": ranges[0]["last"][:-1] and ranges[0]["last"]}],
                          "lot": w.lot()})
    assert r.status_code == 201, r.json
    r = client.get(f"/api/v1/marks/{first}", headers=w.producer.headers)
    assert r.status_code == 200 and r.json["state"] == "activated", r.json
    r = client.post("/api/v1/voids", headers=w.producer.headers,
                    json={"ranges": [{"first": first}], "kind": "voided", "reason": "damaged"})
    assert r.status_code == 200, r.json
    rep = client.get("/api/v1/ledger/report", headers=w.authority.headers).json
    assert rep["balanced"], rep
    cps = client.post("/api/v1/ledger/checkpoints", headers=w.authority.headers)
    assert cps.status_code == 201
    listing = client.get("/api/v1/ledger/checkpoints").json
    assert listing["checkpoints"][0]["seq"] == listing["head"]["seq"]
    cons = client.get("/api/v1/ledger/consistency", query_string={"seq": listing["head"]["seq"],
                                                                 "hash": listing["head"]["hash"]}).json
    assert cons["consistent"]
