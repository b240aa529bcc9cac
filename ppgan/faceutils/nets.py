"""The nets behind the catalogue's role='face' entries (`ppgan.weights.catalog`), by arch name.

MTCNN's three nets, S3FD and PaddleGAN's BlazeFace are built empty and filled from a state dict
(`load_face_net`); the mediapipe nets are built from their .tflite file by their own constructor.
"""
import importlib

FACE_NETS = {  # arch -> (module, class)
    "PNet": (".mtcnn", "PNet"), "RNet": (".mtcnn", "RNet"), "ONet": (".mtcnn", "ONet"),
    "S3FD": (".s3fd", "S3FD"), "BlazeFace": (".blazeface", "BlazeFace"),
    "MediaPipeBlazeFace": (".mediapipe_nets", "MediaPipeBlazeFace"),
    "FaceMeshNet": (".mediapipe_nets", "FaceMeshNet"),
    "SelfieSegmentation": (".mediapipe_nets", "SelfieSegmentation"),
}


def face_net_class(arch):
    """The nn.Module class of a face arch name (`FACE_NETS`); KeyError listing the known ones."""
    if arch not in FACE_NETS:
        raise KeyError(f"unknown face net {arch!r}; known: {', '.join(FACE_NETS)}")
    module, cls = FACE_NETS[arch]
    return getattr(importlib.import_module(module, __package__), cls)


def load_face_net(name, weight_path=None, download=True, device="cpu"):
    """(eval-mode net on `device`, weight file) for the catalogue entry `name` ('s3fd',
    'blazeface', 'mtcnn-pnet', ...): its arch built with the entry's kwargs, weights loaded strictly.

    Raises CheckpointError / DownloadError (one line naming the URL, the cache path and
    --weight_path) when the file is missing and cannot be downloaded, or does not fit."""
    from ..weights import get_spec, load, load_into, resolve_weight

    spec = get_spec(name)
    path = resolve_weight(spec, weight_path=weight_path, download=download)
    net = face_net_class(spec.arch)(**spec.kwargs)
    load_into(net, load(path, spec=spec))
    return net.eval().to(device), path
