"""Loading a parcel's scan for review: stored blobs (by content hash) to ``RenderedScan``.

Two blob formats are understood, told apart by their keys:

- the raw scan format of ``smartscreen.imaging.rawio`` (``high``/``low`` counts plus dark and
  air references): calibrated and rendered through the imaging chain;
- a rendered scan (``rgb``, ``attenuation_high``, ``attenuation_low``, ``zeff``, ``material``)
  as written by :func:`encode_rendered`.

Rendered scans are kept in a small LRU cache (8 scans: a 1,024-channel scan of 1,500 lines holds
about 30 MB of arrays), so toggling the layers of a case costs one render.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from smartscreen.domain.render import RenderedScan
from smartscreen.errors import ImagingError
from smartscreen.imaging import ImagingChain, ScannerParams, calibrate, read_raw_scan, render
from smartscreen.journal import FsImageStore

logger = logging.getLogger(__name__)

RENDERED_KEYS = ("rgb", "attenuation_high", "attenuation_low", "zeff", "material")
RAW_KEYS = ("high", "low")


def encode_rendered(scan: RenderedScan) -> bytes:
    """A rendered scan as compressed ``.npz`` bytes (no pickles)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{key: getattr(scan, key) for key in RENDERED_KEYS})
    return buf.getvalue()


def decode_rendered(data: bytes) -> RenderedScan:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [k for k in RENDERED_KEYS if k not in npz.files]
            if missing:
                raise ImagingError(f"rendered scan blob lacks {missing}")
            return RenderedScan(**{k: npz[k] for k in RENDERED_KEYS})
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ImagingError(f"not a rendered scan blob: {e}") from e


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_png_render(data: bytes) -> RenderedScan:
    """A pseudo-colour PNG as a rendered scan: the colour image only (grey attenuation estimated from
    brightness, material unknown). Used when a parcel's raw scan cannot be rendered."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImagingError("not a decodable PNG")
    rgb = np.ascontiguousarray(bgr[:, :, ::-1], dtype=np.uint8)
    grey = rgb.astype(np.float32).mean(axis=2) / 255.0
    attenuation = (-np.log(np.clip(grey, 1e-3, 1.0))).astype(np.float32)
    zeros = np.zeros(grey.shape, np.float32)
    return RenderedScan(
        rgb=rgb,
        attenuation_high=attenuation,
        attenuation_low=attenuation,
        zeff=zeros,
        material=np.zeros(grey.shape, np.uint8),
    )


def blob_keys(data: bytes) -> tuple[str, ...]:
    """Array names of an ``.npz`` blob; empty when the blob is not an ``.npz``."""
    if not data.startswith(b"PK"):
        return ()
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return tuple(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        logger.warning("unreadable npz blob: %s", e)
        return ()


RawRenderer = Callable[[Path], RenderedScan]


@functools.lru_cache(maxsize=8)
def _chain(params: ScannerParams) -> ImagingChain:
    """One imaging chain (material LUT included) per scanner description."""
    return ImagingChain(params)


def render_raw_file(path: Path) -> RenderedScan:
    """Calibrate and render a stored raw-format scan through the imaging chain (the line's own code path)."""
    raw = read_raw_scan(path)
    chain = _chain(raw.scanner_params())
    return render(calibrate(raw.high, raw.low, raw.calibration), chain.lut, chain.palette)


class ScanLoader:
    """Turns stored blobs into rendered scans, with an LRU cache keyed by content hash."""

    def __init__(self, images: FsImageStore, *, cache_size: int = 8, raw_renderer: RawRenderer = render_raw_file):
        self._images = images
        self._cache: OrderedDict[str, RenderedScan] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()
        self._raw_renderer = raw_renderer

    def load(self, sha256: str) -> RenderedScan:
        """The rendered scan of a stored blob; KeyError if the hash is malformed or unknown."""
        with self._lock:
            hit = self._cache.get(sha256)
            if hit is not None:
                self._cache.move_to_end(sha256)
                return hit
        data = self._images.get(sha256)
        keys = blob_keys(data)
        if all(k in keys for k in RENDERED_KEYS):
            scan = decode_rendered(data)
        elif all(k in keys for k in RAW_KEYS):
            scan = self._raw_renderer(self._images.path_for(sha256))
        elif data.startswith(PNG_SIGNATURE):
            scan = decode_png_render(data)
        else:
            raise ImagingError(f"blob {sha256[:12]} is neither a raw nor a rendered scan")
        with self._lock:
            self._cache[sha256] = scan
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return scan
