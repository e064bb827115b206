"""The one safe image loader, shared by data preparation, training, the CLI and the web app.

bytes or a path in, an RGB uint8 array out (and, for the evidence reader, the file's bytes and the
metadata Pillow read on the way: provenance.py), or an ImageError whose message is one line a user
can act on. Headers are checked before pixels are decoded, so decompression bombs are refused cheaply.
HEIC/HEIF (iPhones) are read through pillow-heif, AVIF through Pillow itself. For a JPEG that says
nothing but its pixels, plain_jpeg_size lets the batch pipeline decode it with TensorFlow instead
(preprocess.plain_jpegs_to_inputs: the same pixels, tested), many at a time outside Python's lock.
"""
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import InputError

pillow_heif.register_heif_opener()
# GIF, TIFF: first frame; HEIC/HEIF: the primary image
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif")
MAX_FILE_BYTES = 20 * 1024 * 1024      # same as the web app's upload limit (.streamlit/config.toml)
MAX_PIXELS = 40_000_000                 # ~6300x6300; larger headers are refused before decoding

Source = Union[bytes, str, Path]


class ImageError(InputError):
    """An image that cannot be used; str(error) is a one-line reason."""


# image types people bring that this loader does not read: the reason, and what to do, in plain words
UNSUPPORTED_TYPES = {
    ".psd": "a Photoshop document: export it as JPEG or PNG",
    ".svg": "a vector drawing (SVG), not a picture of pixels: export it as PNG",
    ".jxl": "JPEG XL is not supported yet: convert it to JPEG or PNG",
    ".pdf": "a PDF document: export the picture as JPEG or PNG",
    **{ext: "a camera raw file: export it from your photo app as JPEG"
       for ext in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw")},
}


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_picture_path(path: Path) -> bool:
    """An image we read, or a kind of picture we do not (UNSUPPORTED_TYPES): it gets a row either way."""
    return path.suffix.lower() in IMAGE_EXTENSIONS or path.suffix.lower() in UNSUPPORTED_TYPES


def unreadable_reason(name: str = "") -> str:
    """Why a file Pillow cannot identify is refused, from its name where that says more."""
    known = UNSUPPORTED_TYPES.get(Path(name).suffix.lower()) if name else None
    return f"cannot read this file: {known}" if known else "not an image file (or a format Pillow cannot read)"


def list_image_files(folder: Path) -> List[Path]:
    """Image files under folder, recursively, in sorted order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_path(p))


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as file:           # one open: its size is checked before reading
                size = os.fstat(file.fileno()).st_size
                if size > MAX_FILE_BYTES:
                    raise ImageError(f"file is too large ({size / 2**20:.1f} MiB > {MAX_FILE_BYTES // 2**20} MiB)")
                data = file.read()
        except OSError as error:
            raise ImageError(f"cannot open file: {error.strerror or error}") from None
    if not data:
        raise ImageError("file is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"file is too large ({len(data) / 2**20:.1f} MiB > {MAX_FILE_BYTES // 2**20} MiB)")
    return data


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: PIL's convert("RGB") clips instead of scaling; scale to 8 bits ourselves
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")          # 2-D uint8 -> mode L
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # transparent pixels shown on white, as an image viewer would
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")     # RGB: no copy (issue 26)


MAX_METADATA_BYTES = 1024 * 1024       # an XMP packet or text chunk larger than this is not read
EXIF_IFD, GPS_IFD = ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo


@dataclass(frozen=True)
class FileMetadata:
    """What the file says besides its pixels, as read while decoding (nothing is decoded twice)."""
    data: bytes = b""                   # the whole file: the C2PA reader checks it against its signed hash
    format: str = ""                    # Pillow's name for it: "JPEG", "PNG", "HEIF", "AVIF", ...
    text: Dict[str, str] = field(default_factory=dict)      # PNG/WebP text chunks (str values)
    exif: Dict[int, object] = field(default_factory=dict)   # base IFD and Exif IFD tags, merged
    has_gps: bool = False
    xmp: bytes = b""
    notes: Tuple[str, ...] = ()         # metadata that could not be read, one line each


@dataclass(frozen=True)
class LoadedImage:
    rgb: np.ndarray                     # HxWx3 uint8, first frame, EXIF orientation applied
    metadata: FileMetadata


def _capped(value, notes: List[str], what: str):
    if isinstance(value, (bytes, str)) and len(value) > MAX_METADATA_BYTES:
        notes.append(f"{what} is too large to read ({len(value) / 2**20:.1f} MiB)")
        return type(value)()
    return value


def _read_metadata(image: Image.Image, data: bytes) -> FileMetadata:
    """The metadata the evidence reader needs; a part that cannot be read becomes a note."""
    notes: List[str] = []
    text = {key: _capped(value, notes, f"text chunk {key!r}") for key, value in image.info.items()
            if isinstance(key, str) and isinstance(value, str) and key != "XML:com.adobe.xmp"}   # PNG XMP: below
    xmp = image.info.get("xmp", b"")
    xmp = _capped(xmp.encode() if isinstance(xmp, str) else xmp if isinstance(xmp, bytes) else b"", notes, "XMP")
    exif, has_gps = {}, False
    try:
        tags = image.getexif()
        if tags:                                        # most files carry none: nothing to look into
            exif = {**dict(tags), **dict(tags.get_ifd(EXIF_IFD))}
            has_gps = bool(tags.get_ifd(GPS_IFD))
    except Exception as error:  # a malformed EXIF block costs its tags, never the image
        notes.append(f"EXIF could not be read ({type(error).__name__})")
    return FileMetadata(data, image.format or "", text, exif, has_gps, xmp, tuple(notes))


def load_image(source: Source, name: str = "") -> LoadedImage:
    """Decode an image file (first frame, EXIF orientation applied) and keep what its metadata says;
    name (a path's own by default) words the reason for a type we do not read."""
    data = _read_bytes(source)
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"image is too large ({width}x{height} pixels > {MAX_PIXELS:,})")
            image.seek(0)                      # animated GIF/WebP: the first frame
            image.load()
            metadata = _read_metadata(image, data)
            ImageOps.exif_transpose(image, in_place=True)      # in place: no copy of an upright image
            return LoadedImage(np.array(_to_rgb(image), dtype=np.uint8), metadata)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(unreadable_reason(name or ("" if isinstance(source, (bytes, bytearray)) else str(source)))) from None
    except Image.DecompressionBombError:
        raise ImageError("image is too large (decompression bomb guard)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"cannot decode image: {reason}") from None


def load_rgb(source: Source) -> np.ndarray:
    """Decode an image file to an HxWx3 uint8 array (load_image without the metadata)."""
    return load_image(source).rgb


def try_load_image(source: Source, name: str = "") -> Tuple[Optional[LoadedImage], Optional[str]]:
    """load_image without raising, whatever the file holds: (image, None) or (None, one-line reason)."""
    try:
        return load_image(source, name), None
    except ImageError as error:
        return None, str(error)
    except Exception as bug:  # a decoder bug on one odd file must not stop a batch, a page or `prepare`
        return None, f"cannot decode image: {type(bug).__name__}"


# segments whose content the evidence reader or the pixels depend on: EXIF/XMP (APP1, with the
# orientation), JUMBF/C2PA (APP11), Photoshop/IPTC (APP13), Adobe colour transforms (APP14)
_TELLING_SEGMENTS = {"APP1", "APP11", "APP13", "APP14"}


def plain_jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) of a complete colour or grey JPEG that says nothing besides its pixels (none
    of _TELLING_SEGMENTS: no EXIF, so no orientation either) within the pixel limit: its evidence
    is empty and preprocess.decode_plain_jpeg gives exactly load_image's pixels (tested). None for
    any other file: load_image reads it. Only the header is parsed (Pillow's own parser)."""
    if not (data.startswith(b"\xff\xd8\xff") and data.endswith(b"\xff\xd9")):   # not a JPEG, or truncated
        return None
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
            plain = (image.format == "JPEG" and image.mode in ("RGB", "L")
                     and not any(marker in _TELLING_SEGMENTS for marker, _ in image.applist)
                     and image.width * image.height <= MAX_PIXELS)
            return image.size if plain else None
    except Exception:  # anything odd: the loader words the reason
        return None


def try_read_bytes(source: Source) -> Tuple[Optional[bytes], Optional[str]]:
    """A file's bytes within the size limit, or (None, the one-line reason load_image would give)."""
    try:
        return _read_bytes(source), None
    except ImageError as error:
        return None, str(error)


def try_load_rgb(source: Source) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """try_load_image's pixels: (array, None) or (None, one-line reason)."""
    loaded, error = try_load_image(source)
    return (loaded.rgb if loaded else None), error
