"""Video I/O and the resumable frame-processing pipeline every video app uses.

Everything goes through one ffmpeg binary (imageio-ffmpeg's, or `$IMAGEIO_FFMPEG_EXE`), run with
argument lists; a failure becomes a one-line `VideoError`. Modules, bottom up:

    ffmpeg.py     the runner: binary lookup, version and option support read once, `run`, error summary
    probe.py      `probe_video` (exact fps, frame count, VFR, colour, rotation), `probe_streams`, ...
    decode.py     `iter_frames`: RGB frames from a decoder thread through a bounded queue
    encode.py     `VideoWriter` (encoder thread, atomic file), the codec for each container, colour
                  tags the encoder takes, audio/subtitle stream mapping
    stages.py     `FrameStage`: reset(start_frame) / push / flush / identity
    pipeline.py   `process_video`: decode -> stages -> encode in resumable chunks, one job per output
    synthetic.py  test videos from photos, with a frame barcode and audio clicks

It sits just above `ppgan.utils` and imports nothing else from ppgan; the apps build stages on it.
"""
from .decode import iter_frames
from .encode import VideoWriter
from .ffmpeg import SWS_FLAGS, VideoError, ffmpeg_exe, ffmpeg_features, ffmpeg_version, fps_mode_args
from .pipeline import process_video
from .probe import IMAGE_EXTS, VIDEO_EXTS, VideoInfo, is_video_file, probe_streams, probe_video, stream_timing
from .stages import FrameStage

__all__ = ["FrameStage", "IMAGE_EXTS", "SWS_FLAGS", "VIDEO_EXTS", "VideoError", "VideoInfo", "VideoWriter",
           "ffmpeg_exe", "ffmpeg_features", "ffmpeg_version", "fps_mode_args", "is_video_file", "iter_frames",
           "probe_streams", "probe_video", "process_video", "stream_timing"]
