"""Uploaded files read from the request stream into memory, under the service's limits.

Starlette's request.form() writes every file part to a SpooledTemporaryFile, which moves to disk
above 1 MiB, and has no per-file or per-request size limit. So the body is fed chunk by chunk to
python-multipart's streaming parser (the one Starlette uses) and each part of the `files` field is
gathered in a bytearray: no upload ever touches the disk, and a request is refused as soon as it
crosses a limit, not after it has been read.
"""
from dataclasses import dataclass
from typing import AsyncIterator, List, Mapping, Optional, Tuple

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

FIELD = "files"


class RequestError(Exception):
    """A request the service refuses: HTTP status, a short code (the limit's setting where a limit
    was crossed) and a sentence for the client."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_file_bytes: int
    max_request_bytes: int


def _too_large(detail: str, code: str) -> RequestError:
    return RequestError(413, code, detail)


class _Parts:
    """python-multipart callbacks that keep the parts of FIELD as (file name, bytes)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.files: List[Tuple[str, bytes]] = []
        self._disposition = b""
        self._header = b""
        self._value = b""
        self._current: Optional[bytearray] = None       # None: a part that is not one of FIELD's files
        self._name = ""
        self.complete = False                           # the closing boundary was read

    def callbacks(self):
        return {"on_part_begin": self.begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.data,
                "on_part_end": self.end, "on_end": self.finish}

    def begin(self):
        self._disposition, self._current, self._name = b"", None, ""

    def header_field(self, data, start, end):
        self._header += data[start:end]

    def header_value(self, data, start, end):
        self._value += data[start:end]

    def header_end(self):
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def headers_finished(self):
        _, options = parse_options_header(self._disposition)
        if options.get(b"name", b"").decode("utf-8", "replace") != FIELD:
            return                                      # other fields are read past, not kept
        if len(self.files) >= self.limits.max_files:
            raise _too_large(f"at most {self.limits.max_files} files per request", "max_files")
        self._name = options.get(b"filename", b"").decode("utf-8", "replace")
        self._current = bytearray()

    def data(self, data, start, end):
        if self._current is None:
            return
        if len(self._current) + (end - start) > self.limits.max_file_bytes:
            raise _too_large(f"{self._name or 'a file'} is larger than {self.limits.max_file_bytes:,} bytes",
                             "max_file_bytes")
        self._current += data[start:end]

    def end(self):
        if self._current is not None:
            self.files.append((self._name, bytes(self._current)))
            self._current = None

    def finish(self):
        self.complete = True


def boundary_of(headers: Mapping[str, str]) -> bytes:
    """The multipart boundary, or a RequestError for a request that is not multipart/form-data."""
    content_type, options = parse_options_header(headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise RequestError(415, "not_multipart",
                           f"send multipart/form-data with the images in the field '{FIELD}' (repeated)")
    if not options.get(b"boundary"):
        raise RequestError(400, "bad_multipart", "multipart/form-data without a boundary")
    return options[b"boundary"]


async def read_files(headers: Mapping[str, str], stream: AsyncIterator[bytes], limits: Limits) -> List[Tuple[str, bytes]]:
    """(file name, bytes) of every part of the `files` field, in upload order."""
    boundary = boundary_of(headers)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_request_bytes:     # refused before reading
        raise _too_large(f"the request is larger than {limits.max_request_bytes:,} bytes", "max_request_bytes")
    parts = _Parts(limits)
    parser = MultipartParser(boundary, parts.callbacks())
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > limits.max_request_bytes:     # chunked bodies declare no length
                raise _too_large(f"the request is larger than {limits.max_request_bytes:,} bytes",
                                 "max_request_bytes")
            parser.write(chunk)
    except MultipartParseError as error:
        raise RequestError(400, "bad_multipart", f"the multipart body cannot be read: {error}") from None
    if not parts.complete:          # python-multipart's finalize() does not check this (yet)
        raise RequestError(400, "bad_multipart", "the multipart body ends before its closing boundary")
    if not parts.files:
        raise RequestError(400, "no_files", f"no file in the field '{FIELD}'")
    return parts.files
