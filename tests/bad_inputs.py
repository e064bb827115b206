"""Awkward and hostile image files, built on the fly, with the outcome the shared loader must give.

`python tests/bad_inputs.py` prints docs/operations.md's "bad input -> outcome" table from these
cases (running the loader on each), and tests/test_images.py checks the doc holds that exact table.
"""
import io
import struct
import zlib

import numpy as np
from PIL import Image


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _photo(size=(48, 32)) -> Image.Image:
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    pixels = np.stack([np.tile(x, (size[1], 1))] * 3, axis=-1)
    pixels[..., 1] = 80
    return Image.fromarray(pixels)


def zero_bytes() -> bytes:
    return b""


def truncated_jpeg() -> bytes:
    return _save(_photo((256, 256)), "JPEG")[:600]


def text_named_jpg() -> bytes:
    return b"this is not an image, just text in a file called photo.jpg\n"


def png_with_alpha() -> bytes:
    image = _photo().convert("RGBA")
    image.putalpha(128)
    return _save(image, "PNG")


def palette_png() -> bytes:
    return _save(_photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")


def grayscale_jpeg() -> bytes:
    return _save(_photo().convert("L"), "JPEG")


def png_16_bit() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 48).astype(np.uint16), (32, 1))
    return _save(Image.fromarray(ramp), "PNG")              # uint16 -> mode I;16


def cmyk_jpeg() -> bytes:
    return _save(_photo().convert("CMYK"), "JPEG")


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6                                # "rotate 90° clockwise to display"
    return _save(_photo((48, 32)), "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    return _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)


def one_pixel_png() -> bytes:
    return _save(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG")


def decompression_bomb_png(side: int = 30_000) -> bytes:
    """A real 30,000 x 30,000 1-bit PNG of ~100 KB: 900 M pixels if anyone decoded it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def over_size_limit() -> bytes:
    from aidetect.images import MAX_FILE_BYTES
    return _save(_photo(), "PNG") + b"\x00" * MAX_FILE_BYTES    # valid PNG, padded past the limit


# (name, builder, expected: an (height, width) for a decoded image, or a phrase of the error)
CASES = [
    ("zero-byte file", zero_bytes, "file is empty"),
    ("truncated JPEG", truncated_jpeg, "cannot decode image"),
    ("text file named .jpg", text_named_jpg, "not an image file"),
    ("PNG with alpha", png_with_alpha, (32, 48)),
    ("palette PNG", palette_png, (32, 48)),
    ("grayscale JPEG", grayscale_jpeg, (32, 48)),
    ("16-bit PNG", png_16_bit, (32, 48)),
    ("CMYK JPEG", cmyk_jpeg, (32, 48)),
    ("EXIF-rotated JPEG (orientation 6)", exif_rotated_jpeg, (48, 32)),
    ("animated GIF", animated_gif, (32, 32)),
    ("animated WebP", animated_webp, (32, 32)),
    ("1x1 image", one_pixel_png, (1, 1)),
    ("decompression bomb (30,000 x 30,000 PNG)", decompression_bomb_png, "image is too large"),
    ("file over the 20 MiB limit", over_size_limit, "file is too large"),
]


def markdown_table() -> str:
    from aidetect.images import try_load_rgb
    rows = ["| input | outcome |", "|---|---|"]
    for name, build, _ in CASES:
        rgb, error = try_load_rgb(build())
        outcome = f"error: {error}" if error else f"decoded to {rgb.shape[1]}x{rgb.shape[0]} RGB, classified"
        rows.append(f"| {name} | {outcome} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
