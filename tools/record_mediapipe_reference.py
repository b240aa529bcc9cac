"""Record the mediapipe reference numbers that tests/faceutils/test_face_mediapipe.py checks against.

This script is NOT part of ppgan and is never run by the tests. It was run once, by hand, in a
throwaway virtual environment holding the real `mediapipe==0.10.21` (with its dependencies:
numpy 1.26.4, opencv-contrib-python 4.11.0.86) plus `ai-edge-litert` 2.3.0 (Google's TFLite
interpreter; the recorded run used its XNNPACK CPU delegate), e.g.

    python -m venv /tmp/mpenv && /tmp/mpenv/bin/pip install mediapipe==0.10.21 ai-edge-litert
    .venv/bin/python -c "import numpy, skimage.data; numpy.save('/tmp/astronaut.npy', skimage.data.astronaut())"
    /tmp/mpenv/bin/python tools/record_mediapipe_reference.py /tmp/astronaut.npy tests/faceutils/data

It writes (numbers only, no package files):
  mediapipe_solutions_reference.npz  mp.solutions.face_detection (model_selection=0) and
      mp.solutions.face_mesh (static_image_mode=True, refine_landmarks=False) results on the
      astronaut photo and two non-square crops of it, plus mp.solutions.selfie_segmentation
      (model_selection=0) on the photo (mask as uint8).
  mediapipe_raw_reference.npz  raw output tensors of the three .tflite models, run by the TFLite
      interpreter on fixed uint8 inputs (stored alongside) scaled as mediapipe scales them.
"""
import os
import sys

import numpy as np

CROPS = {"full": (slice(None), slice(None)), "landscape": (slice(0, 360), slice(None)),
         "portrait": (slice(None), slice(100, 400))}


def _models():
    import mediapipe
    root = os.path.join(os.path.dirname(mediapipe.__file__), "modules")
    return {"det": os.path.join(root, "face_detection", "face_detection_short_range.tflite"),
            "mesh": os.path.join(root, "face_landmark", "face_landmark.tflite"),
            "seg": os.path.join(root, "selfie_segmentation", "selfie_segmentation.tflite")}


def record_solutions(photo):
    import mediapipe as mp
    out = {}
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as det, \
            mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                            refine_landmarks=False) as mesh:
        for name, (rows, cols) in CROPS.items():
            img = np.ascontiguousarray(photo[rows, cols])
            res = det.process(img)
            boxes, kps, scores = [], [], []
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                boxes.append([b.xmin, b.ymin, b.width, b.height])
                kps.append([[k.x, k.y] for k in d.location_data.relative_keypoints])
                scores.append(d.score[0])
            out[f"{name}_shape"] = np.array(img.shape[:2])
            out[f"{name}_det_box"] = np.array(boxes, np.float64).reshape(-1, 4)   # xmin, ymin, w, h (relative)
            out[f"{name}_det_kps"] = np.array(kps, np.float64).reshape(-1, 6, 2)  # relative x, y
            out[f"{name}_det_score"] = np.array(scores, np.float64)
            res = mesh.process(img)
            lms = [[[p.x, p.y, p.z] for p in f.landmark] for f in res.multi_face_landmarks or []]
            out[f"{name}_mesh"] = np.array(lms, np.float64).reshape(-1, 468, 3)  # relative x, y, z (z / width)
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        mask = seg.process(photo).segmentation_mask
        out["full_seg_mask"] = np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8)
    return out


def record_raw(photo):
    import cv2
    from ai_edge_litert.interpreter import Interpreter
    det_in = cv2.resize(photo, (128, 128), interpolation=cv2.INTER_AREA)
    mesh_in = cv2.resize(photo[20:260, 110:350], (192, 192), interpolation=cv2.INTER_AREA)
    seg_in = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)
    scaled = {"det": det_in / 127.5 - 1.0, "mesh": mesh_in / 255.0, "seg": seg_in / 255.0}
    out = {"det_input": det_in, "mesh_input": mesh_in, "seg_input": seg_in}
    for key, path in _models().items():
        it = Interpreter(model_path=path)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], scaled[key][None].astype(np.float32))
        it.invoke()
        for i, d in enumerate(it.get_output_details()):
            value = it.get_tensor(d["index"])
            out[f"{key}_out{i}"] = value.astype(np.float16) if key == "seg" else value.astype(np.float32)
    return out


def main(argv):
    photo_path, out_dir = argv
    photo = np.load(photo_path)
    np.savez_compressed(os.path.join(out_dir, "mediapipe_solutions_reference.npz"), **record_solutions(photo))
    np.savez_compressed(os.path.join(out_dir, "mediapipe_raw_reference.npz"), **record_raw(photo))


if __name__ == "__main__":
    main(sys.argv[1:])
