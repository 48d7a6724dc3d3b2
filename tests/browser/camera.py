"""A fake phone camera for the browser tests: a real label filmed as a YUV4MPEG2 (.y4m) video.

Chromium's fake capture device (``--use-fake-device-for-media-stream``) plays the file named by
``--use-file-for-fake-video-capture`` in a loop as the camera's stream, so the page's own code —
getUserMedia, the canvas and the QR decoder — reads the label exactly as on a phone.

The label is drawn by the service's label library (``GET /api/v1/marks/{serial}/label``) for a mark
that was really issued, placed on a plain background and written frame by frame in the Y4M format
(4:2:0 chroma, the planes converted with Pillow and packed with numpy).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 640, 480
FPS = 5
SECONDS = 3
BACKGROUND = (214, 205, 184)   # a cardboard box


def label_png(client, actor, serial: str, *, preset: str = "30x30") -> Image.Image:
    """The label image of one issued mark, as its producer downloads it."""
    r = client.get(f"/api/v1/marks/{serial}/label?format=png&preset={preset}&dpi=300", headers=actor.headers)
    assert r.status_code == 200, r.get_json(silent=True)
    return Image.open(io.BytesIO(r.data)).convert("RGB")


def scene(label: Image.Image, *, shift: tuple[int, int] = (0, 0)) -> Image.Image:
    """The label, as large as a phone held over it would see it, on the background (640×480)."""
    frame = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    side = int(HEIGHT * 0.8)
    scaled = label.copy()
    scaled.thumbnail((side, side), Image.LANCZOS)
    x = (WIDTH - scaled.width) // 2 + shift[0]
    y = (HEIGHT - scaled.height) // 2 + shift[1]
    frame.paste(scaled, (x, y))
    return frame


def _i420(frame: Image.Image) -> bytes:
    """One frame as planar YUV 4:2:0 (Y at full size, Cb and Cr averaged over 2×2 pixels)."""
    ycbcr = np.asarray(frame.convert("YCbCr"), dtype=np.uint16)
    y = ycbcr[:, :, 0].astype(np.uint8)
    chroma = []
    for channel in (1, 2):
        c = ycbcr[:, :, channel]
        c = (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2] + 2) // 4
        chroma.append(c.astype(np.uint8))
    return y.tobytes() + chroma[0].tobytes() + chroma[1].tobytes()


def write_y4m(path: Path, frames: list[Image.Image], fps: int = FPS) -> Path:
    """Write frames (each 640×480) as a YUV4MPEG2 file."""
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            assert frame.size == (WIDTH, HEIGHT)
            out.write(b"FRAME\n")
            out.write(_i420(frame))
    return path


def label_video(path: Path, label: Image.Image) -> Path:
    """A few seconds of the label held in front of the camera, moving a little as a hand does."""
    frames = []
    for n in range(FPS * SECONDS):
        dx = int(round(6 * np.sin(n / 3)))
        dy = int(round(4 * np.cos(n / 4)))
        frames.append(scene(label, shift=(dx, dy)))
    return write_y4m(path, frames)
