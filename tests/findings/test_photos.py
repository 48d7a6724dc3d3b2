"""Evidence photos of a finding: checked, re-encoded without EXIF, hashed, stored outside the row, limited."""
from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image
from sqlalchemy.exc import OperationalError

from gi_service.services import findings as findings_service

from gi_service.models import FindingPhoto

from .conftest import API, body, count, jpeg_with_exif, small_png, stored_files


def test_a_photo_is_stored_without_exif_and_served_with_its_hash(fw, client, app, session, finding):
    """Is an uploaded phone photo re-encoded without EXIF (GPS, names), its capture time kept as data, its
    SHA-256 (stored and original) recorded, and served as exactly those bytes, privately and uncached?"""
    original = jpeg_with_exif()
    r = fw.photo(finding["id"], original, name="../DCIM/IMG_0001.jpg")
    assert r.status_code == 201, r.json
    photo = r.json
    assert photo["finding_id"] == finding["id"] and photo["taken_at"] == "2026-06-01T10:15:30"
    assert photo["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert (photo["width"], photo["height"]) == (640, 480) and photo["filename"] == "IMG_0001.jpg"
    files = stored_files(app)
    assert len(files) == 1 and files[0].relative_to(app.extensions["gi_storage"].root).parts[0] == "findings"

    got = client.get(photo["url"], headers=fw.places.tianhe.headers)
    assert got.status_code == 200 and got.mimetype == "image/jpeg"
    assert got.headers["Cache-Control"] == "private, no-store"
    assert hashlib.sha256(got.data).hexdigest() == photo["sha256"] and len(got.data) == photo["size"]
    assert files[0].read_bytes() == got.data
    stored = Image.open(io.BytesIO(got.data))
    assert dict(stored.getexif()) == {} and b"Exif" not in got.data and b"Li Si" not in got.data
    assert "exif" not in stored.info and "icc_profile" not in stored.info

    detail = client.get(f"{API}/findings/{finding['id']}", headers=fw.places.tianhe.headers).json
    assert detail["photos"] == [{k: v for k, v in photo.items() if k != "finding_id"}]
    assert detail["photo_count"] == 1
    listed = client.get(f"{API}/findings/{finding['id']}/photos", headers=fw.places.tianhe.headers).json
    assert listed["items"] == detail["photos"]


def test_a_png_is_accepted_as_a_jpeg_without_transparency(fw, client, finding):
    """Is a PNG accepted and stored as a JPEG (no capture time to keep)?"""
    r = fw.photo(finding["id"], small_png((0, 128, 0, 128)), name="shelf.png")
    assert r.status_code == 201, r.json
    assert r.json["taken_at"] is None and r.json["original_sha256"] == hashlib.sha256(small_png((0, 128, 0, 128))
                                                                                       ).hexdigest()
    got = client.get(r.json["url"], headers=fw.places.tianhe.headers)
    assert Image.open(io.BytesIO(got.data)).format == "JPEG"


def test_too_large_and_not_an_image_are_refused_with_nothing_stored(fw, app, session, finding):
    """Is a photo over 10 MB refused 413 and a file that is not a JPEG/PNG refused 422, nothing stored either way?"""
    big = b"\xff\xd8\xff\xe0" + bytes(10 * 1024 * 1024)
    r = fw.photo(finding["id"], big)
    assert (r.status_code, r.json["error"]) == (413, "photo_too_large")
    r = fw.photo(finding["id"], b"GIF89a" + bytes(100), name="x.gif")
    assert (r.status_code, r.json["error"]) == (422, "not_an_image")
    r = fw.photo(finding["id"], b"just some text", name="notes.txt")
    assert (r.status_code, r.json["error"]) == (422, "not_an_image")
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    r = fw.photo(finding["id"], gif.getvalue(), name="real.gif")
    assert (r.status_code, r.json["error"]) == (422, "not_an_image")
    assert stored_files(app) == [] and count(session, FindingPhoto) == 0


def test_the_form_must_carry_a_photo(fw, client, session, finding):
    """Are a missing `photo`, a JSON body, a bad client_photo_id and an unknown field refused, nothing stored?"""
    url = f"{API}/findings/{finding['id']}/photos"
    h = fw.places.tianhe.headers
    r = client.post(url, headers=h, data={"client_photo_id": "p1"}, content_type="multipart/form-data")
    assert (r.status_code, r.json["error"]) == (422, "validation_failed") and r.json["details"][0]["field"] == "photo"
    r = client.post(url, headers=h, json={"photo": "base64..."})
    assert (r.status_code, r.json["error"]) == (415, "unsupported_media_type")
    r = fw.photo(finding["id"], small_png(), client_photo_id="has space")
    assert (r.status_code, r.json["error"]) == (422, "validation_failed")
    r = fw.photo(finding["id"], small_png(), caption="x")
    assert (r.status_code, r.json["error"]) == (422, "validation_failed")
    assert count(session, FindingPhoto) == 0


def test_the_twenty_first_photo_is_refused(fw, app, session, finding):
    """Does a finding take at most 20 photos, the 21st refused 409 with no file left behind?"""
    for i in range(20):
        r = fw.photo(finding["id"], small_png((i * 10, 0, 0, 255)), name=f"p{i}.png")
        assert r.status_code == 201, r.json
    r = fw.photo(finding["id"], small_png((255, 255, 0, 255)), name="p21.png")
    assert (r.status_code, r.json["error"]) == (409, "too_many_photos")
    assert count(session, FindingPhoto) == 20 and len(stored_files(app)) == 20


def test_a_client_photo_id_makes_a_reupload_change_nothing(fw, app, session, finding):
    """Does re-uploading the same photo with its client_photo_id answer the stored photo (200, replay) without a
    second file, and is the same id with another photo refused 409?"""
    original = jpeg_with_exif()
    first = fw.photo(finding["id"], original, client_photo_id="dev1:0001:p1")
    assert first.status_code == 201
    again = fw.photo(finding["id"], original, client_photo_id="dev1:0001:p1")
    assert again.status_code == 200 and again.headers["X-Idempotent-Replay"] == "true"
    assert again.json == first.json
    other = fw.photo(finding["id"], jpeg_with_exif(colour=(0, 0, 200)), client_photo_id="dev1:0001:p1")
    assert (other.status_code, other.json["error"]) == (409, "client_photo_id_reused")
    assert count(session, FindingPhoto) == 1 and len(stored_files(app)) == 1


def test_the_file_is_removed_when_its_row_cannot_be_written(fw, app, session, finding, monkeypatch):
    """If the database refuses the photo's row, is the file already stored deleted again (no orphan evidence)?"""
    def failing_insert(session_, row):
        raise OperationalError("INSERT INTO finding_photos", {}, Exception("disk I/O error"))

    monkeypatch.setattr(findings_service, "_record_photo", failing_insert)
    r = fw.photo(finding["id"], jpeg_with_exif())
    assert (r.status_code, r.json["error"]) == (500, "internal_error")
    assert stored_files(app) == [] and count(session, FindingPhoto) == 0


def test_the_file_is_removed_when_the_commit_fails(fw, app, session, finding, monkeypatch):
    """If the transaction fails at commit after the row was written, is the stored file deleted again?"""
    from sqlalchemy.orm import Session

    real_commit = Session.commit

    def failing_commit(self):
        if any(isinstance(o, FindingPhoto) for o in self.identity_map.values()):
            raise OperationalError("COMMIT", {}, Exception("connection lost"))
        return real_commit(self)

    monkeypatch.setattr(Session, "commit", failing_commit)
    r = fw.photo(finding["id"], jpeg_with_exif())
    monkeypatch.undo()
    assert r.status_code == 500
    assert stored_files(app) == [] and count(session, FindingPhoto) == 0


def test_only_the_filing_organisation_adds_photos(fw, client, app, session, finding):
    """Are photos refused from another supervisor (even one who sees the finding), producers, printers and the
    public, and for a finding that does not exist?"""
    cases = [(fw.places.guangzhou, 403, "not_filing_organisation"), (fw.authority, 403, "not_filing_organisation"),
             (fw.producer, 403, "wrong_role"), (fw.printer, 403, "wrong_role")]
    for actor, status, code in cases:
        r = fw.photo(finding["id"], small_png(), by=actor)
        assert (r.status_code, r.json["error"]) == (status, code), (actor.org.kind, r.json)
    r = client.post(f"{API}/findings/{finding['id']}/photos", data={"photo": (io.BytesIO(small_png()), "a.png")},
                    content_type="multipart/form-data")
    assert r.status_code == 401
    r = fw.photo(finding["id"] + 1000, small_png())
    assert (r.status_code, r.json["error"]) == (404, "finding_not_found")
    assert stored_files(app) == [] and count(session, FindingPhoto) == 0


def test_who_may_see_a_photo(fw, client, factory, finding):
    """Is a photo served to supervisors who see the finding (the shop's city, the producer's place) and refused to
    others, to producers and to the public; and is an unknown photo 404?"""
    photo = fw.photo(finding["id"], jpeg_with_exif()).json
    for actor in (fw.places.tianhe, fw.places.guangzhou, fw.authority, fw.places.qiaocheng, fw.places.national):
        assert client.get(photo["url"], headers=actor.headers).status_code == 200, actor.org.adcode
    r = client.get(photo["url"], headers=fw.places.shanghai.headers)
    assert (r.status_code, r.json["error"]) == (403, "outside_jurisdiction")
    r = client.get(photo["url"], headers=fw.producer.headers)
    assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    assert client.get(photo["url"]).status_code == 401
    r = client.get(f"{API}/findings/{finding['id']}/photos/{photo['id'] + 1}", headers=fw.places.tianhe.headers)
    assert (r.status_code, r.json["error"]) == (404, "photo_not_found")
    other = fw.file(body("other", gi_id=fw.gi.id)).json
    r = client.get(f"{API}/findings/{other['id']}/photos/{photo['id']}", headers=fw.places.tianhe.headers)
    assert (r.status_code, r.json["error"]) == (404, "photo_not_found")
