"""Evidence photos keep nothing but their pixels, and cost a bounded amount to decode (issue 15 §3).

The first half builds JPEGs and PNGs that carry one kind of metadata each (a JPEG comment, XMP, IPTC,
EXIF with a MakerNote and a GPS position, an ICC profile, PNG text chunks...), stores them as the
service does and reads the stored bytes back: no segment but the bare JPEG structure, nothing in
Pillow's `info`, none of the planted strings. The second half checks the decoding limits: PNGs and
JPEGs that must be decoded whole are capped in pixels (422 `image_too_large`), camera JPEGs of up to
200 MP are accepted and decoded scaled down by libjpeg (Pillow's `draft`), and files built to make the
decoder loop (thousands of scans, segments or chunks) are refused before Pillow reads them. Both the
finding photo upload and the public report form are driven for the end-to-end cases.
"""
from __future__ import annotations

import io
import re
import struct
import warnings
import zlib

import pytest
from PIL import Image, ImageCms, IptcImagePlugin, JpegImagePlugin, PngImagePlugin
from sqlalchemy import func, select

from gi_service import photos
from gi_service.errors import GIError
from gi_service.models import ConsumerReport, FindingPhoto
from gi_service.storage import FileStore

from .conftest import API, count, stored_files

MAX_BYTES = 10 * 1024 * 1024
JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"

# --- building images --------------------------------------------------------------------------


def grey_jpeg(width: int, height: int) -> bytes:
    """A real baseline 4:2:0 JPEG of uniform mid grey of any size, written directly.

    With the standard Huffman tables every 16×16 MCU of mid grey (all DC differences 0, every block
    just an end-of-block) is the same 32 bits: `28 A2 8A 00`. So a 200-megapixel camera-sized JPEG is
    3 MB made in milliseconds, yet libjpeg decodes every one of its blocks."""
    small = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(small, "JPEG", quality=90, subsampling=2)
    data = small.getvalue()
    sof, sos = data.index(b"\xff\xc0"), data.index(b"\xff\xda")
    header = bytearray(data[:sos])
    header[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    header += data[sos:sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")]
    mcus = -(-width // 16) * -(-height // 16)
    return bytes(header) + b"\x28\xa2\x8a\x00" * mcus + b"\xff\xd9"


def blank_png(width: int, height: int) -> bytes:
    """A black 8-bit greyscale PNG of any size (zlib of zero rows): a 49 MP one is ~50 KB, made cheaply."""
    z = zlib.compressobj(9)
    row = bytes(width + 1)                      # filter byte + one byte per pixel
    step = max(1, 2_000_000 // len(row))
    parts = [z.compress(row * min(step, height - y)) for y in range(0, height, step)]
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b"")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = 8, []
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def jpeg(size=(320, 240), colour=(170, 60, 40), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def with_segments(data: bytes, *segments: bytes) -> bytes:
    """The JPEG with raw segments put right after its SOI marker."""
    return data[:2] + b"".join(segments) + data[2:]


def xmp_packet(secret: str) -> bytes:
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
            f'exif:GPSLatitude="23,7.733N" exif:GPSLongitude="113,19.667E"><dc:creator><rdf:Seq><rdf:li>{secret}'
            '</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
            ).encode()


def iptc_app13(byline: bytes, caption: bytes) -> bytes:
    """A Photoshop APP13 payload whose IPTC record names the photographer (2:80) and has a caption (2:120)."""
    def dataset(tag: int, value: bytes) -> bytes:
        return bytes([0x1C, 2, tag]) + struct.pack(">H", len(value)) + value
    iptc = dataset(0, b"\x00\x04") + dataset(80, byline) + dataset(120, caption)
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    return b"Photoshop 3.0\x00" + resource + (b"\x00" if len(iptc) % 2 else b"")


def phone_exif(*, orientation: int | None = None) -> Image.Exif:
    """EXIF as a phone writes it: maker, serial, owner, a MakerNote blob, a GPS position, a capture time."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"                                  # Make
    exif[0x013B] = "SECRET-ARTIST Wang Wu"                       # Artist
    if orientation:
        exif[0x0112] = orientation
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2026:06:01 10:15:30"                          # DateTimeOriginal
    ifd[0xA431] = "SECRET-BODY-SERIAL-0042"                      # BodySerialNumber
    ifd[0x927C] = b"SECRET-MAKERNOTE\x00lens=77;face-ids=3;unit-serial=9F2C"  # MakerNote
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (23.0, 7.0, 44.0), "E", (113.0, 19.0, 40.0)
    return exif


def icc_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def checked(client, code: str) -> str:
    """Check a code as a consumer and return the scan token of that check."""
    r = client.get(f"/v/{code}", headers={"User-Agent": PHONE, **JSON})
    return r.json["scan"]["token"]                # every verdict answers its document at the top level


def report_form(token: str) -> dict:
    return {"token": token, "description": "同一个标签出现在货架上的五盒茶叶上", "shop_name": "天河茶叶市场 A12 档"}


# --- reading a stored photo -------------------------------------------------------------------

_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
BARE_JPEG = {0xD8: "SOI", 0xE0: "APP0", 0xDB: "DQT", 0xC0: "SOF0", 0xC4: "DHT", 0xDA: "SOS", 0xD9: "EOI"}


def jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The segments of a JPEG in file order as (marker, payload), and whatever follows its EOI."""
    assert data[:2] == b"\xff\xd8"
    segments, pos = [(0xD8, b"")], 2
    while True:
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        if marker == 0xD9:
            segments.append((0xD9, b""))
            return segments, data[pos + 2:]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        segments.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:
            pos = _NEXT_MARKER.search(data, pos).start()


def assert_pixels_only(stored: bytes, *secrets: bytes) -> Image.Image:
    """The stored file is a bare JPEG: SOI, one JFIF APP0, tables, one frame and scan, EOI, nothing after;
    Pillow finds no comment, EXIF, XMP, IPTC, ICC or any other metadata in it; no planted string is left."""
    segments, trailing = jpeg_segments(stored)
    assert {m for m, _ in segments} <= set(BARE_JPEG), [hex(m) for m, _ in segments if m not in BARE_JPEG]
    app0 = [p for m, p in segments if m == 0xE0]
    assert len(app0) == 1 and app0[0].startswith(b"JFIF\x00") and len(app0[0]) == 14   # no JFIF thumbnail
    assert [m for m, _ in segments].count(0xDA) == 1 and trailing == b""
    assert stored.count(b"\xff\xd8") == 1                # no second image (thumbnail, MPF picture) inside
    for secret in secrets:
        assert secret not in stored, secret
    for raw in (b"Exif\x00", b"http://ns.adobe.com", b"Photoshop", b"ICC_PROFILE", b"acsp", b"MPF\x00"):
        assert raw not in stored, raw
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG"
    assert set(image.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density"}, image.info
    assert [name for name, _ in image.applist] == ["APP0"]
    assert dict(image.getexif()) == {} and IptcImagePlugin.getiptcinfo(image) is None
    return image


@pytest.fixture
def store(tmp_path) -> FileStore:
    return FileStore(tmp_path / "storage")


def stored(store: FileStore, data: bytes) -> tuple[photos.StoredPhoto, bytes]:
    photo = photos.store_photo(store, "findings", data, max_bytes=MAX_BYTES)
    return photo, store.get(photo.key)


def refusal(data: bytes) -> tuple[int, str, dict]:
    with pytest.raises(GIError) as caught:
        photos.read_photo(data, max_bytes=MAX_BYTES)
    details = caught.value.details
    return caught.value.status, caught.value.code, (details[0] if isinstance(details, list) else details)


# --- metadata -----------------------------------------------------------------------------------

JPEG_METADATA = {
    # kind: (the file, what Pillow must see in the original, the strings planted in it)
    "comment (COM)": (lambda: jpeg(comment=b"SECRET-COMMENT shot by Wang Wu at 23.1291,113.3280"),
                      "comment", [b"SECRET-COMMENT"]),
    "XMP (APP1 xap/1.0)": (lambda: with_segments(jpeg(), segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00"
                                                                 + xmp_packet("SECRET-XMP-CREATOR"))),
                           "xmp", [b"SECRET-XMP-CREATOR", b"GPSLatitude"]),
    "extended XMP (APP1 xmp/extension)": (
        lambda: with_segments(jpeg(), segment(0xE1, b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 32
                                              + struct.pack(">II", 22, 0) + b"SECRET-EXTENDED-XMP...")),
        None, [b"SECRET-EXTENDED-XMP"]),
    "IPTC (APP13 Photoshop)": (lambda: with_segments(jpeg(), segment(0xED, iptc_app13(b"SECRET-IPTC-BYLINE",
                                                                                      b"SECRET-IPTC-CAPTION"))),
                               "photoshop", [b"SECRET-IPTC-BYLINE", b"SECRET-IPTC-CAPTION", b"8BIM"]),
    "EXIF with MakerNote and GPS (APP1 Exif)": (
        lambda: jpeg(exif=phone_exif().tobytes()), "exif",
        [b"SECRET-ARTIST", b"SECRET-BODY-SERIAL", b"SECRET-MAKERNOTE", b"PhoneMaker"]),
    "ICC profile (APP2)": (lambda: jpeg(icc_profile=icc_profile()), "icc_profile", []),
    "an application segment of its own (APP9)": (lambda: with_segments(jpeg(), segment(0xE9, b"SECRET-APP9")),
                                                 None, [b"SECRET-APP9"]),
    "data after the end of the image": (lambda: jpeg() + b"SECRET-TRAILER" * 10, None, [b"SECRET-TRAILER"]),
}


@pytest.mark.parametrize("kind", list(JPEG_METADATA))
def test_no_metadata_block_of_a_jpeg_survives(store, kind):
    """Does a JPEG carrying this one kind of metadata come out of storage as a bare JPEG, without the block, its
    content or anything Pillow would report as metadata (issue 15 §3: a COM comment used to survive)?"""
    make, info_key, secrets = JPEG_METADATA[kind]
    original = make()
    for secret in secrets:                        # the test file really carries what must go
        assert secret in original
    if info_key:
        assert info_key in Image.open(io.BytesIO(original)).info
    photo, data = stored(store, original)
    image = assert_pixels_only(data, *secrets)
    assert image.size == (320, 240) and (photo.width, photo.height) == (320, 240)


PNG_METADATA = {
    "tEXt": (lambda info: info.add_text("Author", "SECRET-TEXT-AUTHOR"), {}, "Author", [b"SECRET-TEXT-AUTHOR"]),
    "zTXt": (lambda info: info.add_text("Comment", "SECRET-ZTXT-COMMENT " * 20, zip=True), {}, "Comment", []),
    "iTXt": (lambda info: info.add_itxt("Description", "SECRET-ITXT 王五", lang="zh", tkey="说明"), {},
             "Description", [b"SECRET-ITXT"]),
    "compressed iTXt": (lambda info: info.add_itxt("Title", "SECRET-ITXT-Z " * 20, zip=True), {}, "Title", []),
    "XMP (iTXt XML:com.adobe.xmp)": (
        lambda info: info.add_itxt("XML:com.adobe.xmp", xmp_packet("SECRET-PNG-XMP").decode()), {},
        "XML:com.adobe.xmp", [b"SECRET-PNG-XMP"]),
    "EXIF (eXIf)": (None, {"exif": phone_exif().tobytes()}, "exif", [b"SECRET-ARTIST", b"SECRET-MAKERNOTE"]),
    "ICC profile (iCCP)": (None, {"icc_profile": icc_profile()}, "icc_profile", []),
}


@pytest.mark.parametrize("kind", list(PNG_METADATA))
def test_no_metadata_chunk_of_a_png_survives(store, kind):
    """Does a PNG carrying this kind of metadata chunk come out of storage as a bare JPEG without it?"""
    add, params, info_key, secrets = PNG_METADATA[kind]
    pnginfo = PngImagePlugin.PngInfo()
    if add:
        add(pnginfo)
    out = io.BytesIO()
    Image.new("RGB", (200, 150), (20, 90, 160)).save(out, "PNG", pnginfo=pnginfo, **params)
    original = out.getvalue()
    assert info_key in Image.open(io.BytesIO(original)).info
    for secret in secrets:
        assert secret in original
    photo, data = stored(store, original)
    assert_pixels_only(data, *secrets)
    assert (photo.width, photo.height) == (200, 150)


def test_a_jpeg_with_every_kind_of_metadata_keeps_only_its_pixels_upright_and_its_capture_time(store):
    """A phone JPEG with all the blocks at once (EXIF with orientation, MakerNote and GPS, XMP, IPTC, ICC, a
    comment, trailing data): is the stored photo bare, turned upright, and its capture time kept as data?"""
    image = Image.new("RGB", (320, 240), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 160, 240))              # left half blue, right half red
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=phone_exif(orientation=6).tobytes(), icc_profile=icc_profile(),
               comment=b"SECRET-COMMENT")
    original = with_segments(out.getvalue(),
                             segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet("SECRET-XMP")),
                             segment(0xED, iptc_app13(b"SECRET-BYLINE", b"SECRET-CAPTION"))) + b"SECRET-TRAILER"
    photo, data = stored(store, original)
    upright = assert_pixels_only(data, b"SECRET-COMMENT", b"SECRET-XMP", b"SECRET-BYLINE", b"SECRET-CAPTION",
                                 b"SECRET-TRAILER", b"SECRET-ARTIST", b"SECRET-MAKERNOTE", b"SECRET-BODY-SERIAL")
    assert upright.size == (240, 320) and (photo.width, photo.height) == (240, 320)
    assert photo.taken_at == "2026-06-01T10:15:30"
    top, bottom = upright.convert("RGB").getpixel((120, 20)), upright.convert("RGB").getpixel((120, 300))
    assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2]   # orientation 6: the left half is now on top


def test_a_multi_picture_jpeg_is_accepted_as_its_first_picture(store):
    """Phones write JPEGs with a second picture behind an MPF segment (Ultra HDR gain maps, depth maps) which
    Pillow opens as "MPO": is such a photo accepted (it was refused as "not MPO"), stored as its first
    picture only, without the MPF segment or the second picture?"""
    first, second = Image.new("RGB", (320, 240), (200, 30, 30)), Image.new("RGB", (80, 60), (0, 0, 255))
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second], comment=b"SECRET-MPO-COMMENT")
    original = out.getvalue()
    assert Image.open(io.BytesIO(original)).format == "MPO" and original.count(b"\xff\xd8") == 2
    _, data = stored(store, original)
    image = assert_pixels_only(data, b"SECRET-MPO-COMMENT")
    assert image.size == (320, 240) and image.convert("RGB").getpixel((160, 120))[0] > 150


# --- through the endpoints ----------------------------------------------------------------------

COMMENTED = b"SECRET-COMMENT: Li Si, 138 0013 8000"


def test_a_finding_photo_is_served_without_its_jpeg_comment(fw, client, app, finding):
    """Is a JPEG comment (and the EXIF beside it) gone from a finding photo as the API serves it and as it
    lies in the file store?"""
    original = jpeg(comment=COMMENTED, exif=phone_exif().tobytes())
    r = fw.photo(finding["id"], original)
    assert r.status_code == 201, r.json
    assert r.json["taken_at"] == "2026-06-01T10:15:30"
    got = client.get(r.json["url"], headers=fw.places.tianhe.headers)
    assert got.status_code == 200
    assert_pixels_only(got.data, COMMENTED, b"SECRET-ARTIST")
    [path] = stored_files(app)
    assert path.read_bytes() == got.data


def test_a_consumer_report_photo_is_served_without_its_jpeg_comment(fw, client, app):
    """Is a JPEG comment gone from the photo of a consumer's report, as inspectors fetch it and as it is stored?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    token = checked(client, b.code(1))
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**report_form(token), "photo": (io.BytesIO(jpeg(comment=COMMENTED)), "a.jpg", "image/jpeg")})
    assert r.status_code == 201, r.json
    clue = client.get(f"{API}/clues/{r.json['id']}", headers=fw.authority.headers).json
    got = client.get(clue["report"]["photo"]["url"], headers=fw.authority.headers)
    assert got.status_code == 200
    assert_pixels_only(got.data, COMMENTED)
    [path] = stored_files(app)
    assert path.read_bytes() == got.data


# --- the cost of decoding -----------------------------------------------------------------------

def test_a_png_over_24_megapixels_is_refused_and_one_of_24_accepted(fw, app, session, finding):
    """Is a PNG one column over the cap (6001×4000) refused 422 `image_too_large` with the limit and what to
    send instead, nothing stored, while one of exactly 24 MP (6000×4000) is accepted and scaled to 4096 px?"""
    r = fw.photo(finding["id"], blank_png(6001, 4000), name="screen.png")
    assert (r.status_code, r.json["error"]) == (422, "image_too_large"), r.json
    detail = r.json["details"][0]
    assert detail == {"field": "photo", "problem": "too many pixels", "format": "PNG", "width": 6001,
                      "height": 4000, "max_pixels": 24_000_000}
    assert "24 megapixels" in r.json["message"] and "JPEG" in r.json["message"]
    assert stored_files(app) == [] and count(session, FindingPhoto) == 0

    r = fw.photo(finding["id"], blank_png(6000, 4000), name="screen.png")
    assert r.status_code == 201, r.json
    assert (r.json["width"], r.json["height"]) == (4096, 2731)


def test_the_public_report_form_refuses_a_49_megapixel_png(fw, client, app, session):
    """The issue's case: a tiny PNG of 49 MP (7000×7000) sent with a consumer report. Is it refused 422
    `image_too_large` (JSON and the HTML form alike) before being decoded, with no report and no file left?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    bomb = blank_png(7000, 7000)
    assert len(bomb) < 150_000
    token = checked(client, b.code(1))
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**report_form(token), "photo": (io.BytesIO(bomb), "IMG.png", "image/png")})
    assert (r.status_code, r.json["error"]) == (422, "image_too_large"), r.json
    r = client.post(f"/v/{b.code(1)}/report", content_type="multipart/form-data",
                    data={**report_form(token), "photo": (io.BytesIO(bomb), "IMG.png", "image/png")})
    assert r.status_code == 422 and r.mimetype == "text/html"
    assert stored_files(app) == [] and session.scalar(select(func.count()).select_from(ConsumerReport)) == 0


@pytest.fixture
def draft_calls(monkeypatch) -> list[dict]:
    """Every JpegImageFile.draft call: what was asked, and the size the file decodes at afterwards."""
    calls: list[dict] = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        before = self.size
        result = real(self, mode, size)
        calls.append({"mode": mode, "target": size, "file_size": before, "decodes_at": self.size, "result": result})
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return calls


def test_a_large_jpeg_is_decoded_at_half_scale_then_resized(fw, finding, draft_calls):
    """Is a 9000×6000 (54 MP) JPEG accepted, libjpeg asked to decode it scaled (draft RGB, aiming at a long side
    of 3584) so that it decodes at 4500×3000 (1/2) instead of whole, and stored at 4096 px?"""
    r = fw.photo(finding["id"], grey_jpeg(9000, 6000))
    assert r.status_code == 201, r.json
    assert (r.json["width"], r.json["height"]) == (4096, 2731)
    [call] = [c for c in draft_calls if c["mode"] == "RGB"]
    assert call["target"] == (3584, 2389) and call["file_size"] == (9000, 6000)
    assert call["decodes_at"] == (4500, 3000) and call["result"] is not None


def test_a_200_megapixel_phone_photo_is_accepted_on_the_report_form(fw, client, draft_calls):
    """Is a 200 MP JPEG (16320×12240, beyond Pillow's own decompression-bomb limit of 179 MP) accepted on the
    public report form, decoded at 1/4 (4080×3060) and stored at that size?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    token = checked(client, b.code(1))
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**report_form(token), "photo": (io.BytesIO(grey_jpeg(16320, 12240)), "a.jpg", "image/jpeg")})
    assert r.status_code == 201, r.json
    [call] = [c for c in draft_calls if c["mode"] == "RGB"]
    assert call["decodes_at"] == (4080, 3060)
    clue = client.get(f"{API}/clues/{r.json['id']}", headers=fw.authority.headers).json
    assert (clue["report"]["photo"]["width"], clue["report"]["photo"]["height"]) == (4080, 3060)


@pytest.mark.parametrize("size, decoded, kept", [
    ((3000, 2000), None, (3000, 2000)),                 # 6 MP: no scaled decode asked for
    ((4032, 3024), (4032, 3024), (4032, 3024)),         # 12 MP, what phones deliver by default: kept whole
    ((8064, 6048), (4032, 3024), (4032, 3024)),         # 48 MP: decoded at 1/2, stored as decoded
    ((12000, 9000), (6000, 4500), (4096, 3072)),        # 108 MP: decoded at 1/2, then resized
    ((16320, 12240), (4080, 3060), (4080, 3060)),       # 200 MP: decoded at 1/4
])
def test_phone_photo_sizes_are_decoded_scaled_and_stored_at_label_resolution(draft_calls, size, decoded, kept):
    """At the sizes phones write, is a JPEG decoded at the strongest 1/2^k reduction that keeps a long side
    of at least 3584 px (or whole when it is no larger), and stored at that size or 4096 px, never less?"""
    _, width, height, _ = photos.read_photo(grey_jpeg(*size), max_bytes=MAX_BYTES)
    assert [c["decodes_at"] for c in draft_calls if c["mode"] == "RGB"] == ([decoded] if decoded else [])
    assert (width, height) == kept


def test_the_scaled_decode_keeps_the_orientation_and_the_capture_time(draft_calls):
    """Is a 9000×6000 JPEG taken with the phone turned (EXIF orientation 6) decoded scaled, turned upright
    (portrait, 2731×4096) and its capture time kept?"""
    original = with_segments(grey_jpeg(9000, 6000), segment(0xE1, phone_exif(orientation=6).tobytes()))
    assert Image.open(io.BytesIO(original)).getexif()[0x0112] == 6
    data, width, height, taken_at = photos.read_photo(original, max_bytes=MAX_BYTES)
    assert (width, height) == (2731, 4096) and Image.open(io.BytesIO(data)).size == (2731, 4096)
    assert taken_at == "2026-06-01T10:15:30"
    assert [c["decodes_at"] for c in draft_calls if c["mode"] == "RGB"] == [(4500, 3000)]


def test_a_jpeg_over_250_megapixels_is_refused_before_decoding(draft_calls):
    """Is a JPEG of 250 MP (20000×12500) accepted, and one a row larger (20000×12501) refused 422
    `image_too_large` without being decoded?"""
    _, width, height, _ = photos.read_photo(grey_jpeg(20000, 12500), max_bytes=MAX_BYTES)
    assert (width, height) == (4096, 2560)
    draft_calls.clear()
    status, code, detail = refusal(grey_jpeg(20000, 12501))
    assert (status, code) == (422, "image_too_large")
    assert detail["max_pixels"] == 250_000_000 and detail["format"] == "JPEG"
    assert draft_calls == []


def test_pillows_own_bomb_limit_is_neither_reached_nor_changed():
    """Is a 100 MP PNG (past Pillow's decompression-bomb warning at 89 MP) refused by our cap, 422
    `image_too_large`, before Pillow warns; and is Pillow's process-wide limit left as it was?"""
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, code, detail = refusal(blank_png(10_000, 10_000))
    assert (status, code, detail["problem"]) == (422, "image_too_large", "too many pixels")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == before


def progressive_jpeg(size, colour=(120, 130, 140)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90, progressive=True)
    return out.getvalue()


def test_a_progressive_jpeg_is_capped_like_a_png():
    """A progressive JPEG cannot be decoded scaled (libjpeg keeps every coefficient of the whole image): is one
    of 24 MP accepted and one of 6001×4000 refused 422 `image_too_large`?"""
    _, width, height, _ = photos.read_photo(progressive_jpeg((6000, 4000)), max_bytes=MAX_BYTES)
    assert (width, height) == (4096, 2731)
    status, code, detail = refusal(progressive_jpeg((6001, 4000)))
    assert (status, code) == (422, "image_too_large")
    assert detail["max_pixels"] == 24_000_000 and detail["problem"] == "too many pixels"


def decodes(data: bytes) -> tuple[int, int]:
    """The size Pillow decodes a file at (it raises if it cannot)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def scans_of(data: bytes) -> list[tuple[int, int]]:
    pos, out = 2, []
    while True:
        marker = data[pos + 1]
        if marker == 0xD9:
            return out
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            end = _NEXT_MARKER.search(data, end).start()
            out.append((pos, end))
        pos = end


def test_a_jpeg_of_thousands_of_scans_is_refused():
    """A progressive JPEG whose last scan is repeated makes libjpeg pass over the whole image once per scan
    (a 120 KB file of 12 MP and 2,000 scans costs half a minute). Is a JPEG of more than 20 scans refused
    422 `not_an_image` saying so, while an ordinary progressive JPEG (10 scans) is accepted?"""
    normal = progressive_jpeg((64, 48))
    assert len(scans_of(normal)) == 10
    photos.read_photo(normal, max_bytes=MAX_BYTES)
    start, end = scans_of(normal)[-1]
    bomb = normal[:end] + normal[start:end] * 11 + normal[end:]
    assert len(scans_of(bomb)) == 21 and decodes(bomb) == (64, 48)
    status, code, detail = refusal(bomb)
    assert (status, code) == (422, "not_an_image") and detail["problem"] == "too many scans"


def test_files_made_of_thousands_of_empty_blocks_are_refused():
    """Pillow reads a JPEG's segments and a PNG's chunks one by one in Python: 10 MB of empty ones cost it
    seconds before a pixel is decoded. Are a JPEG of 20,000 empty comments, a JPEG padded with 20,000 fill
    bytes and a PNG of 20,000 empty chunks refused 422 `not_an_image`?"""
    small_jpeg = jpeg((64, 48))
    out = io.BytesIO()
    Image.new("RGB", (64, 48)).save(out, "PNG")
    small_png = out.getvalue()
    for bomb in (with_segments(small_jpeg, segment(0xFE, b"") * 20_000),
                 small_jpeg[:2] + b"\xff" * 20_000 + small_jpeg[2:],
                 small_png[:33] + png_chunk(b"prVt", b"") * 20_000 + small_png[33:]):
        assert decodes(bomb) == (64, 48)                                       # Pillow itself reads it
        status, code, detail = refusal(bomb)
        assert (status, code) == (422, "not_an_image") and detail["problem"] == "too many blocks"


def test_a_png_in_8_kb_chunks_as_libpng_writes_it_is_accepted():
    """libpng (Android, most tools) writes the image data in 8 KB IDAT chunks: is a ~10 MB PNG made of
    ~1,200 of them accepted?"""
    out = io.BytesIO()
    Image.frombytes("RGB", (1800, 1800), bytes(range(256)) * (1800 * 1800 * 3 // 256) + bytes(1800 * 1800 * 3 % 256)
                    ).save(out, "PNG", compress_level=0)
    chunks = png_chunks(out.getvalue())
    idat = b"".join(data for kind, data in chunks if kind == b"IDAT")
    pieces = [png_chunk(b"IDAT", idat[i:i + 8192]) for i in range(0, len(idat), 8192)]
    data = PNG_SIGNATURE + png_chunk(b"IHDR", chunks[0][1]) + b"".join(pieces) + png_chunk(b"IEND", b"")
    assert len(pieces) > 1000 and len(data) < MAX_BYTES
    _, width, height, _ = photos.read_photo(data, max_bytes=MAX_BYTES)
    assert (width, height) == (1800, 1800)


@pytest.mark.parametrize("data, named", [
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "GIF"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(24), "WebP"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(16), "HEIC"),
    (b"II*\x00" + bytes(16), "TIFF"),
])
def test_other_image_formats_are_refused_by_name(data, named):
    """Is a GIF, WebP, HEIC (an iPhone's default) or TIFF refused 422 `not_an_image` with a message that names
    the format and asks for a JPEG?"""
    with pytest.raises(GIError) as caught:
        photos.read_photo(data, max_bytes=MAX_BYTES)
    assert caught.value.code == "not_an_image" and caught.value.status == 422
    assert named in caught.value.message and "JPEG" in caught.value.message
