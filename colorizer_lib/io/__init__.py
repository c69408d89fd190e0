"""Pictures in and out: load from anything, save with provenance, watermark, compare, walk folders.

One job per module, importing only downwards in this order::

    http     `is_url`; fetch an image over http(s) into memory (size limit, web pages refused)
    modes    any PIL mode to 8-bit RGB (+ alpha, + full-precision luma), ICC and EXIF kept, has_colour
    load     `load_image`: path, URL, bytes, file object, PIL image or numpy array -> `LoadedImage`
    save     `save_image` (format from the extension, provenance, atomic), `read_provenance`, `output_suffix`
    files    `iter_image_files`, `remove_stale_temp_files`
    render   `apply_watermark`, `side_by_side`
    tensor   `to_luma_tensor`, `rgb8_to_luma`, the only module that imports torch (lazily)

The names below are the package's public interface; import them from ``colorizer_lib.io``.
"""

from __future__ import annotations

from .http import is_url
from .files import INPUT_EXTENSIONS, iter_image_files, remove_stale_temp_files
from .load import MAX_PIXELS, LoadedImage, Source, load_image, open_header, source_being_loaded
from .modes import LUMA_WEIGHTS, carried_metadata, has_colour
from .render import apply_watermark, side_by_side
from .save import OUTPUT_FORMATS, output_suffix, read_provenance, save_image, save_jpeg_bytes
from .tensor import rgb8_to_luma, to_luma_tensor

__all__ = [
    "LoadedImage",
    "Source",
    "load_image",
    "is_url",
    "open_header",
    "source_being_loaded",
    "carried_metadata",
    "save_image",
    "output_suffix",
    "save_jpeg_bytes",
    "read_provenance",
    "remove_stale_temp_files",
    "has_colour",
    "apply_watermark",
    "side_by_side",
    "iter_image_files",
    "rgb8_to_luma",
    "to_luma_tensor",
    "INPUT_EXTENSIONS",
    "OUTPUT_FORMATS",
    "LUMA_WEIGHTS",
    "MAX_PIXELS",
]
