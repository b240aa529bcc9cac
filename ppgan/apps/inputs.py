"""What an app's `input` may be, and where its outputs go.

- an image file -> `<output>/<app>/<stem><suffix><ext>` (or `output_path`);
- a video file -> `<output>/<app>/<stem><suffix>.mp4` (mkv/mov/webm keep their container),
  processed by the streaming pipeline (`ppgan.video.process_video`);
- a folder -> every image and video below it, recursively; the output tree mirrors the
  input tree under `<output>/<app>/`; `skip_existing` skips files whose output exists;
- a glob (`photos/*.jpg`, `**/*.png`) -> the matching files, outputs flat in `<output>/<app>/`.

`<output>` is `output` by default for every app (`<output>/<App>/`: RealSR, DeOldify, EDVR,
BasicVSR, VideoEnhance, GANGenerate). An output file that exists is overwritten, and a line says
so (`skip_existing` keeps it instead). With `keep_frames` a video's processed frames are also
written as PNG files, `<output folder>/<stem>_frames/%08d.png` (numbered from 1, as ffmpeg's
image2 pattern).

In folder / glob mode a file that cannot be read is reported and skipped, the rest is
processed, and the result says how many failed (the CLIs exit with 3 then). An entry that is not
a regular file (a FIFO, socket or device named like an image, a broken link) is one of those:
it is reported as failed and never opened (opening a FIFO would wait for a writer forever). One
named as the single input is an error.
"""
import dataclasses
import glob as globlib
import os

from ..utils.errors import USER_ERRORS, PPGANError, one_line
from ..utils.image import IMAGE_EXTENSIONS, is_image_file
from ..utils.io import check_writable_dir, missing_dirs, not_regular_reason, remove_empty_dirs, same_file
from ..video import VIDEO_EXTS, FrameStage

VIDEO_EXTENSIONS = tuple(sorted(VIDEO_EXTS))
KEEP_CONTAINERS = (".mp4", ".mkv", ".mov", ".webm", ".m4v")


def is_video_path(path):
    return os.path.splitext(str(path))[1].lower() in VIDEO_EXTENSIONS


@dataclasses.dataclass
class BatchResult:
    """Outcome of a folder / glob run."""
    outputs: list
    skipped: list
    failed: list  # [(input path, one-line reason)]

    @property
    def ok(self):
        return not self.failed

    def summary(self):
        return (f"{len(self.outputs)} written, {len(self.skipped)} skipped (output exists), "
                f"{len(self.failed)} failed")


def _has_glob(s):
    return any(c in s for c in "*?[")


def check_input_exists(spec):
    """Raise 'input not found' unless `spec` is an existing path or a glob, and an error when it
    is a FIFO, socket or device (cheap: stats only, no walk, nothing opened)."""
    spec = os.fspath(spec)
    if not os.path.exists(spec) and not _has_glob(spec):
        link = " (a broken symbolic link)" if os.path.islink(spec) else ""
        raise PPGANError(f"input not found: {spec}{link}")
    if os.path.exists(spec) and not os.path.isdir(spec):
        why = not_regular_reason(spec)
        if why is not None:  # a FIFO or device: never opened (a FIFO would block forever)
            raise PPGANError(f"input {spec} {why} or folder")


def collect_inputs(spec):
    """-> (mode, root, [paths]); mode is 'file', 'folder' or 'glob'."""
    spec = os.fspath(spec)
    check_input_exists(spec)
    if os.path.isfile(spec):
        return "file", os.path.dirname(os.path.abspath(spec)), [spec]
    if os.path.isdir(spec):
        found = []
        for dirpath, dirnames, filenames in os.walk(spec):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith(".") and (is_image_file(name) or is_video_path(name)):
                    found.append(os.path.join(dirpath, name))
        if not found:
            raise PPGANError(f"no image or video files in folder {spec} "
                             f"(looked for {', '.join(IMAGE_EXTENSIONS)} and videos)")
        return "folder", spec, found
    if _has_glob(spec):  # folders aside, every match is an input; special files fail in process_one
        found = sorted(p for p in globlib.glob(spec, recursive=True) if not os.path.isdir(p))
        if not found:
            raise PPGANError(f"no files match {spec}")
        return "glob", None, found
    raise PPGANError(f"input is not a file or folder: {spec}")


def default_output_name(pred, src):
    stem, ext = os.path.splitext(os.path.basename(src))
    if is_video_path(src):
        ext = ext.lower() if ext.lower() in KEEP_CONTAINERS else ".mp4"
    elif not is_image_file(src):
        ext = ".png"
    return stem + pred.suffix + ext


def frames_dir_of(dst):
    """Where `keep_frames` writes a video output's frames: `<folder>/<stem>_frames/`."""
    return os.path.join(os.path.dirname(dst), os.path.splitext(os.path.basename(dst))[0] + "_frames")


class FrameWriterStage(FrameStage):
    """Last stage of a video job with `keep_frames`: writes each frame it passes on to
    `folder/%08d.png` (frame i of the video -> number i + 1), atomically."""

    label = "frames"

    def __init__(self, folder):
        self.folder = folder
        self.next = 1

    def reset(self, start_frame):
        self.next = int(start_frame) + 1

    def push(self, frames):
        from ..utils.image import imwrite

        frames = list(frames)
        for f in frames:
            imwrite(os.path.join(self.folder, f"{self.next:08d}.png"), f)
            self.next += 1
        return frames

    def flush(self):
        return []

    def identity(self):
        return {"stage": "keep_frames"}  # a run resumed with keep_frames redoes the chunks without frames


def process_one(pred, src, dst, video_options, progress, keep_frames=False):
    """One input file -> dst; returns dst. The caller has checked that `dst` is not `src` and
    that its folder is writable. An existing `dst` is overwritten (logged)."""
    why = not_regular_reason(src)
    if why is not None:  # a FIFO named a.png would block the reader (or ffmpeg) forever
        raise PPGANError(f"{src} {why}; not read")
    if os.path.exists(dst):
        pred._log(f"[ppgan] overwriting {dst}")
    if is_video_path(src):
        from ..video import process_video

        stages = pred.video_stages()
        if keep_frames:
            stages = stages + [FrameWriterStage(frames_dir_of(dst))]
        process_video(src, dst, stages, progress=progress, **video_options)
        return dst
    if not is_image_file(src):
        raise PPGANError(f"unsupported file type: {src} (images: {' '.join(IMAGE_EXTENSIONS)}; "
                         "videos: .mp4 .mkv .mov .avi .webm ...)")
    shown = getattr(pred, "tile_progress", False)
    pred.tile_progress = progress  # one image: its tiles' progress (a large image takes minutes on a CPU)
    try:
        return pred.run_image(src, dst)
    finally:
        pred.tile_progress = shown


def run_inputs(pred, spec, output_path=None, skip_existing=False, video_options=None, progress=True,
               keep_frames=False):
    """See the module docstring. One input -> its output path; folder / glob -> BatchResult."""
    video_options = dict(video_options or {})
    mode, root, files = collect_inputs(spec)
    if output_path:
        output_path = os.path.abspath(os.fspath(output_path))  # 'new/../x' works before 'new' exists
    out_root = pred.output_dir()
    if mode == "file":
        src = files[0]
        dst = output_path or os.path.join(out_root, default_output_name(pred, src))
        if os.path.isdir(dst):
            dst = os.path.join(dst, default_output_name(pred, src))
        if skip_existing and os.path.exists(dst):
            pred._log(f"[ppgan] skipped {src}: {dst} exists")
            return dst
        if same_file(src, dst):
            raise PPGANError(f"output path is the input file ({src}); choose another output")
        folder = os.path.dirname(os.path.abspath(dst))
        created = missing_dirs(folder)
        check_writable_dir(folder)
        try:
            return process_one(pred, src, dst, video_options, progress, keep_frames)
        finally:  # a failed job leaves no empty folders behind (an output keeps its own)
            remove_empty_dirs(created)

    out_root = output_path or out_root
    created = missing_dirs(out_root)
    check_writable_dir(out_root)
    try:
        return _run_plan(pred, files, root, out_root, skip_existing, video_options, progress, created, keep_frames)
    finally:  # folders made for outputs that all failed are removed again
        remove_empty_dirs(created)


def _run_plan(pred, files, root, out_root, skip_existing, video_options, progress, created, keep_frames=False):
    plan = []
    for src in files:
        rel = os.path.relpath(os.path.dirname(os.path.abspath(src)), os.path.abspath(root)) if root else "."
        dst = os.path.normpath(os.path.join(out_root, rel, default_output_name(pred, src)))
        if same_file(src, dst):
            raise PPGANError(f"the output {dst} would overwrite its input; choose another output folder "
                             f"or a suffix")
        plan.append((src, dst))
    result = BatchResult([], [], [])
    writable = set()  # output folders checked so far
    try:
        from tqdm import tqdm

        it = tqdm(plan, desc=pred.name or "files", unit="file", disable=not progress)
    except ImportError:  # pragma: no cover
        it = plan
    for src, dst in it:
        if skip_existing and os.path.exists(dst):
            result.skipped.append(dst)
            continue
        try:
            folder = os.path.dirname(os.path.abspath(dst))
            if folder not in writable:
                created.extend(missing_dirs(folder))
                check_writable_dir(folder)
                writable.add(folder)
            result.outputs.append(process_one(pred, src, dst, video_options, False, keep_frames))
        except USER_ERRORS as e:
            result.failed.append((src, one_line(e)))
            pred._log(f"[ppgan] skipped {src}: {one_line(e)}")
    return result
