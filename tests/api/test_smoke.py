def test_gi_created_through_the_api_is_readable_publicly(client, factory):
    """Can an authority register a GI that the public then reads?"""
    auth = factory.authority("341600")
    r = client.post("/api/v1/gis", json={"name_zh": "亳白芍", "kind": "protected_product",
                                         "category": "herbal_medicine", "area_adcodes": ["341602"]},
                    headers=auth.headers)
    assert r.status_code == 201, r.json
    gi_id = r.json["id"]
    r = client.get(f"/api/v1/gis/{gi_id}")
    assert r.status_code == 200
    assert r.json["name_zh"] == "亳白芍"
    assert r.json["origin_area"]["area_km2"] > 1000
