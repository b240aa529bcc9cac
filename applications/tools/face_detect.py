#!/usr/bin/env python
"""Find faces in images, folders and videos: boxes, scores and 5 landmarks as JSON, and with --draw
an annotated copy.

Per input file FILE the output folder gets FILE's stem + `.json`:
  {"input", "type": "image"|"video", "detector", "width", "height", "records": [...]}
with one record per face: images {"file", "time": null, "box": [x1, y1, x2, y2], "score",
"landmarks": [[x, y] x 5] or null}; videos one per frame and face {"frame", "time" (s),
"track_id", "box", "score", "landmarks", "interpolated", "raw_box"} (boxes tracked and smoothed over
time; see ppgan.faceutils.tracking) plus "n_frames", "fps" and "missing_frames" (frames with no
face). Video detections are cached under $PPGAN_HOME/face_tracks (a second run skips detection).
A folder input mirrors its tree in the output folder."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """examples:
  python applications/tools/face_detect.py --input photo.jpg --output faces --draw
  python applications/tools/face_detect.py --input photos/ --output faces --detector haar
  python applications/tools/face_detect.py --input talk.mp4 --output faces --draw --batch_size 16

detectors: mtcnn (default, offline, 5 landmarks), sfd, blazeface, mediapipe, haar (no landmarks)
exit codes: 0 done, 2 bad input or arguments, 3 a folder where some files failed
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="image, video, folder or glob")
    p.add_argument("--output", default=os.path.join("output", "FaceDetect"),
                   help="output folder (default: output/FaceDetect)")
    p.add_argument("--detector", default="mtcnn", help="mtcnn (default), sfd, blazeface, mediapipe or haar")
    p.add_argument("--draw", action="store_true", help="also write the input with boxes and landmarks drawn "
                                                       "(<stem>_faces.png, or the video's container)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto (default): CUDA when present")
    p.add_argument("--batch_size", type=int, default=8, help="video frames per detector call (default 8)")
    p.add_argument("--weight_path", default=None, help="the detector's weight file (default: the catalogue's)")
    p.add_argument("--no_cache", action="store_true", help="detect again even if the video's face tracks are cached")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    args = p.parse_args(argv)

    from ppgan.apps import cli_args

    return cli_args.run_main(lambda: _run(args))


def _run(args):
    from ppgan.apps.cli_args import print_result, show_library_status
    from ppgan.apps.inputs import check_input_exists, collect_inputs
    from ppgan.faceutils.detection import detector_class
    from ppgan.utils.errors import ConfigError

    if args.batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {args.batch_size}")
    check_input_exists(args.input)
    detector_class(args.detector)  # an unknown name is an error before any file is read
    mode, root, files = collect_inputs(args.input)
    show_library_status(args.quiet)

    from ppgan.faceutils import FaceDetector

    device = "cpu" if args.detector.strip().lower() == "haar" else args.device
    detector = FaceDetector(args.detector, device=device, weight_path=args.weight_path)
    out_root = os.path.abspath(args.output)
    if mode == "file":
        written = _one(files[0], out_root, detector, args)
        for path in written:
            print(f"output: {path}")
        return 0
    return print_result(_many(files, root, out_root, detector, args))


def _many(files, root, out_root, detector, args):
    from ppgan.apps.inputs import BatchResult
    from ppgan.utils.errors import USER_ERRORS, one_line

    result = BatchResult([], [], [])
    for src in files:
        rel = os.path.relpath(os.path.dirname(os.path.abspath(src)), os.path.abspath(root)) if root else "."
        try:
            result.outputs.extend(_one(src, os.path.normpath(os.path.join(out_root, rel)), detector, args))
        except USER_ERRORS as e:
            result.failed.append((src, one_line(e)))
    return result


def _one(src, folder, detector, args):
    """Detect in one file; returns the paths written (JSON, and the drawn copy with --draw)."""
    from ppgan.apps.inputs import KEEP_CONTAINERS, is_video_path
    from ppgan.utils.errors import PPGANError
    from ppgan.utils.image import IMAGE_EXTENSIONS, is_image_file
    from ppgan.utils.io import not_regular_reason

    why = not_regular_reason(src)
    if why is not None:
        raise PPGANError(f"{src} {why}; not read")
    stem, ext = os.path.splitext(os.path.basename(src))
    json_path = os.path.join(folder, stem + ".json")
    if is_video_path(src):
        drawn = os.path.join(folder, stem + "_faces" + (ext.lower() if ext.lower() in KEEP_CONTAINERS else ".mp4"))
        return _video(src, json_path, drawn, detector, args)
    if not is_image_file(src):
        raise PPGANError(f"unsupported file type: {src} (images: {' '.join(IMAGE_EXTENSIONS)}; "
                         "videos: .mp4 .mkv .mov .avi .webm ...)")
    return _image(src, json_path, os.path.join(folder, stem + "_faces.png"), detector, args)


def _write_json(path, data):
    """`data` as JSON, one line per key and one per record (readable, and greppable by frame)."""
    import json

    from ppgan.utils.io import atomic_write_text

    head = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in data.items() if k != "records"]
    records = [f"  {json.dumps(r)}" for r in data["records"]]
    text = "\n".join(["{", *head, ' "records": [', ",\n".join(records), " ]", "}"]) + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_text(path, text)
    return path


def _image(src, json_path, drawn, detector, args):
    from ppgan.faceutils.tracking import draw_faces
    from ppgan.utils.image import imread, imwrite

    img = imread(src, mode="rgb")
    faces = detector.detect([img])[0]
    records = [{"file": src, "time": None, **f.to_dict()} for f in faces]
    out = [_write_json(json_path, {"input": src, "type": "image", "detector": detector.identity,
                                   "width": img.shape[1], "height": img.shape[0], "records": records})]
    if args.draw:
        imwrite(drawn, draw_faces(img, faces))
        out.append(drawn)
    if not args.quiet:
        print(f"{src}: {len(faces)} face{'s' if len(faces) != 1 else ''}", file=sys.stderr)
    return out


def _video(src, json_path, drawn, detector, args):
    from ppgan.faceutils.tracking import DrawTrackStage, track_faces
    from ppgan.video import probe_video, process_video

    info = probe_video(src)
    track = track_faces(src, detector, batch_size=args.batch_size, cache=not args.no_cache, progress=not args.quiet)
    missing = [int(i) for i in track.missing.nonzero()[0]]
    out = [_write_json(json_path, {"input": src, "type": "video", "detector": detector.identity,
                                   "width": info.width, "height": info.height, "fps": float(info.fps),
                                   "n_frames": track.n_frames, "missing_frames": missing,
                                   "records": track.records()})]
    if args.draw:
        process_video(src, drawn, [DrawTrackStage(track)], batch_size=args.batch_size, progress=not args.quiet)
        out.append(drawn)
    if not args.quiet:
        print(f"{src}: {len(track.track_ids)} face track(s), {len(missing)} of {track.n_frames} frames "
              f"without a face", file=sys.stderr)
    return out


if __name__ == "__main__":
    sys.exit(main())
