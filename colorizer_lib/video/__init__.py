"""Video colorization: probe, decode pipe, batched colorization with temporal smoothing, encode pipe.

Main entry points::

    from colorizer_lib.video import colorize_video, preview_video, probe, download_video
    result = colorize_video("film.mp4", colorizer, "film_color.mp4", render_factor=21, smoothing=0.6)

See :func:`colorize_video` for the options and :class:`VideoResult` for what comes back.
"""

from .binaries import FFmpegTools, check_encoder, count_video_packets, find_tools
from .convert import gray_u8_to_luma, pad_to_even, rgb_to_yuv420p, yuv420p_to_rgb
from .download import download_video, finished_download, is_google_drive, is_url
from .loop import colorize_frames
from .pipeline import VideoResult, colorize_video
from .preview import PreviewResult, extract_gray_frame, preview_video
from .probe import VideoInfo, probe
from .settings import EncodeSettings, default_output
from .smoothing import ChromaSmoother

__all__ = [
    "ChromaSmoother", "EncodeSettings", "FFmpegTools", "PreviewResult", "VideoInfo", "VideoResult",
    "check_encoder", "colorize_frames", "colorize_video", "count_video_packets", "default_output", "download_video",
    "extract_gray_frame", "find_tools", "finished_download", "gray_u8_to_luma", "is_google_drive", "is_url",
    "pad_to_even", "preview_video", "probe", "rgb_to_yuv420p", "yuv420p_to_rgb",
]
