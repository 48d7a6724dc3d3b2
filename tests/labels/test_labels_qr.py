"""QR symbols: bit-exact with a reference encoder, decodable, one version per batch, the documented mask."""
from __future__ import annotations

import random
import string

import numpy as np
import pytest
import qrcode
from PIL import Image
from qrcode.constants import (
    ERROR_CORRECT_H,
    ERROR_CORRECT_L,
    ERROR_CORRECT_M,
    ERROR_CORRECT_Q,
)
from qrcode.util import MODE_8BIT_BYTE, MODE_ALPHA_NUM, QRData, lost_point

from gi_service.codes import qr_version as codes_qr_version
from labels import DEFAULT_MASK, LabelError, batch_qr_version, qr_matrix, url_qr_version
from labels.qr import ALPHANUMERIC, plan
from tests.labels.helpers import decode, make_items

LEVELS = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}


def reference(url: str, version: int, level: str, mask: int, mode: int) -> np.ndarray:
    """The same symbol from the qrcode package, with version, mask and mode pinned."""
    qr = qrcode.QRCode(version=version, error_correction=LEVELS[level], mask_pattern=mask, border=0)
    qr.add_data(QRData(url, mode=mode), optimize=0)
    qr.make(fit=False)
    return np.array(qr.modules, dtype=np.uint8)


def with_quiet_zone(matrix: np.ndarray, scale: int = 4) -> Image.Image:
    padded = np.pad(np.asarray(matrix, dtype=np.uint8), 4)
    pixels = np.where(padded == 1, 0, 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    return Image.fromarray(pixels, "L")


@pytest.mark.parametrize("level", "LMQH")
def test_matrices_match_the_qrcode_package_bit_for_bit(level):
    """For every version 1-10, mask and mode, is our fixed-plan symbol the one qrcode makes?"""
    rng = random.Random(level)
    for version in range(1, 11):
        for mask in range(8):
            p = plan(version, level, mask)
            for mode, alphabet in ((MODE_8BIT_BYTE, string.ascii_lowercase + string.digits + "/:.-?="),
                                   (MODE_ALPHA_NUM, ALPHANUMERIC)):
                capacity = p.capacity("byte" if mode == MODE_8BIT_BYTE else "alphanumeric")
                length = rng.randint(max(1, capacity - 6), capacity)      # full and nearly full symbols
                url = "h" + "".join(rng.choice(alphabet) for _ in range(length - 1)) \
                    if mode == MODE_8BIT_BYTE else "".join(rng.choice(alphabet) for _ in range(length))
                assert np.array_equal(p.matrix(url), reference(url, version, level, mask, mode)), \
                    (version, level, mask, mode)


def test_batch_matrices_are_the_single_matrices():
    """Does encoding a sheet's URLs together give each label's own symbol, and data plus patterns the whole?"""
    urls = [c.url for c in make_items(40)]
    p = plan(4, "M", DEFAULT_MASK)
    together = p.matrices(urls)
    data_only = p.matrices(urls, function_patterns=False)
    for i, url in enumerate(urls):
        assert np.array_equal(together[i], p.matrix(url))
    assert np.array_equal(data_only | p.function_patterns[None], together)
    assert not (data_only & p.function_patterns[None]).any()


@pytest.mark.parametrize("version", range(1, 11))
def test_every_version_decodes_with_zxing(version):
    """Does zxing-cpp read a symbol of each version back to the exact URL?"""
    url = "https://a.cn/" + "A" * (plan(version, "M").capacity("byte") - 13)
    assert url_qr_version(url, "M") == version
    assert decode(with_quiet_zone(qr_matrix(url, version))) == [url]


def test_uppercase_urls_use_alphanumeric_mode_and_decode():
    """Is an all-uppercase URL encoded in the denser alphanumeric mode, and read back unchanged?"""
    url = "HTTPS://GI.CNIPA.GOV.CN/V/ABBSH26000001234MLXBAETLQFOZT4"
    assert url_qr_version(url) < url_qr_version(url.lower())
    assert decode(with_quiet_zone(qr_matrix(url))) == [url]


def test_version_rule_agrees_with_the_code_scheme():
    """Does the label library size URLs exactly as gi_service.codes.qr_version does (which the ledger checks)?"""
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 200)
        url = "".join(rng.choice(ALPHANUMERIC if rng.random() < 0.5 else string.ascii_letters + "/:.")
                      for _ in range(n))
        for level in "MQ":
            try:
                expected = codes_qr_version(url, level)
            except ValueError:
                with pytest.raises(LabelError) as err:
                    url_qr_version(url, level)
                assert err.value.code == "url_too_long"
            else:
                assert url_qr_version(url, level) == expected


def test_batch_version_is_the_smallest_that_holds_the_longest_url():
    """Does a batch get one version, fitted to its longest URL (or to a stated maximum length)?"""
    urls = ["https://a.cn/v/X", "https://gi.cnipa.gov.cn/v/" + "A" * 30]
    assert batch_qr_version(urls) == url_qr_version(urls[1]) == 4
    assert batch_qr_version(max_length=56) == 4
    assert batch_qr_version(max_length=63) == 5
    assert batch_qr_version(max_length=56, error_correction="Q") == 5


def test_urls_that_cannot_be_encoded_are_refused():
    """Are a non-ASCII URL, an empty URL and a URL too long for the batch's version refused with a reason?"""
    with pytest.raises(LabelError) as err:
        url_qr_version("https://地理标志.cn/v/X")
    assert err.value.code == "url_invalid" and "percent-encode" in err.value.message
    with pytest.raises(LabelError) as err:
        qr_matrix("")
    assert err.value.code == "url_invalid"
    with pytest.raises(LabelError) as err:
        plan(2, "M").matrix("https://gi.cnipa.gov.cn/v/" + "A" * 30)
    assert err.value.code == "url_too_long" and "version as 4" in err.value.message


def test_default_mask_has_the_lowest_penalty_on_code_urls():
    """Is the fixed mask the one the documented measurement chose: lowest mean ISO penalty on code URLs?"""
    urls = [c.url for i, c in enumerate(make_items(200 * 97)) if i % 97 == 0]     # 200 codes across a range
    means = []
    for mask in range(8):
        p = plan(4, "M", mask)
        means.append(np.mean([lost_point(p.matrix(u).astype(bool).tolist()) for u in urls]))
    assert DEFAULT_MASK == 2
    assert min(range(8), key=means.__getitem__) == DEFAULT_MASK


def test_bad_plans_are_refused():
    """Are an unknown error-correction level, version or mask refused by code?"""
    for kwargs, code in (({"error_correction": "X"}, "bad_error_correction"), ({"version": 11}, "bad_qr_version"),
                         ({"mask": 8}, "bad_mask")):
        with pytest.raises(LabelError) as err:
            qr_matrix("https://a.cn", **{"version": 1, **kwargs})
        assert err.value.code == code
