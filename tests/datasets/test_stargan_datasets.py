"""StarGAN datasets: CelebA layout (attribute file), one folder per domain, several datasets
with the mask vector, the embedded demo attributes / domains, StarGAN v2's folders with
PaddleGAN's keys and preprocess pipelines, RandomResizedCropProb, and the one-line errors."""
import os

import cv2
import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataloader, build_dataset
from ppgan.datasets.preprocess import Preprocess
from ppgan.datasets.stargan_dataset import DEMO_ATTRS, attribute_scores, predict_attributes
from ppgan.datasets.starganv2_dataset import predict_domain
from ppgan.utils.errors import ConfigError, DatasetError
from ppgan.utils.image import imwrite

ATTRS = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young", "Smiling"]


def write_image(path, value, h=24, w=20):
    """A noisy image around grey level `value` (channel 0 = value, so the file can be told
    from its pixels)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(abs(hash(path)) % (1 << 32))
    img = rng.integers(0, 30, (h, w, 3)).astype(np.int64)
    img[..., 0] = value
    imwrite(path, img.clip(0, 255).astype(np.uint8))


def make_celeba(root, n=6, attrs=ATTRS, rows=None, count=None, attr_in="parent"):
    """images/000001.jpg... and list_attr_celeba.txt (in the parent folder or in images/).
    Row i's attribute k is 1 when (i + k) % 3 == 0. Returns (images folder, attr file, values)."""
    images = os.path.join(root, "images")
    values = np.array([[1 if (i + k) % 3 == 0 else -1 for k in range(len(attrs))] for i in range(n)])
    for i in range(n):
        write_image(os.path.join(images, f"{i + 1:06d}.png"), 10 * i)
    if rows is None:
        rows = [f"{i + 1:06d}.png " + " ".join(f"{v:2d}" for v in values[i]) for i in range(n)]
    attr_file = os.path.join(root if attr_in == "parent" else images, "list_attr_celeba.txt")
    with open(attr_file, "w") as f:
        f.write(f"{len(rows) if count is None else count}\n" + " ".join(attrs) + "\n" + "\n".join(rows) + "\n")
    return images, attr_file, (values > 0).astype(np.float32)


def make_domains(root, counts=(3, 4, 2), names=("angry", "happy", "sad")):
    """One folder per domain; domain d's images have channel 0 = 60 * d + 20."""
    for d, (name, n) in enumerate(zip(names, counts)):
        for i in range(n):
            write_image(os.path.join(root, name, f"{i:03d}.png"), 60 * d + 20)
    return str(root)


def domain_of(img):
    """Domain index from channel 0 of an image in [-1, 1] (see make_domains)."""
    value = (img[0].mean().item() + 1) * 127.5
    return int(round((value - 20) / 60))


def one_line_error(exc_info):
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


# ---- CelebA layout --------------------------------------------------------------------------------
@pytest.mark.parametrize("attr_in", ["parent", "images"])
@pytest.mark.parametrize("selected", [["Blond_Hair", "Male"], ["Young", "Black_Hair", "Smiling"], "Male,Young"])
def test_celeba_layout_labels_and_split(tmp_path, attr_in, selected):
    images, attr_file, values = make_celeba(str(tmp_path), attr_in=attr_in)
    names = selected.split(",") if isinstance(selected, str) else selected
    cols = [ATTRS.index(a) for a in names]
    seen = {}
    for is_train in (True, False):
        ds = build_dataset({"name": "StarGANDataset", "dataroot": images, "selected_attrs": selected,
                            "image_size": 16, "crop_size": 20, "is_train": is_train, "test_count": 2})
        assert len(ds) == (4 if is_train else 2)
        assert ds.selected_attrs == names and ds.label_type == "multi"
        assert ds.label_groups == [{"name": "celeba", "size": len(names), "type": "multi"}]
        for i in range(len(ds)):
            s = ds[(i, 7)]
            assert s["img"].shape == (3, 16, 16) and s["img"].dtype == torch.float32
            assert -1 <= s["img"].min() and s["img"].max() <= 1
            row = int(os.path.basename(s["img_path"])[:6]) - 1
            assert s["label"].tolist() == values[row, cols].tolist()
            seen.setdefault(is_train, set()).add(row)
    assert seen[True].isdisjoint(seen[False]) and len(seen[True] | seen[False]) == 6


def test_celeba_default_attrs_and_explicit_attr_path(tmp_path):
    images, attr_file, values = make_celeba(str(tmp_path / "a"))
    other = str(tmp_path / "b" / "attrs.txt")
    os.makedirs(os.path.dirname(other))
    os.replace(attr_file, other)
    ds = build_dataset({"name": "StarGANDataset", "dataroot": images, "attr_path": other, "test_count": 1,
                        "image_size": 8})
    assert ds.selected_attrs == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    assert ds[0]["label"].shape == (5,)


def test_celeba_train_flip_is_random_test_is_not(tmp_path):
    images, _, _ = make_celeba(str(tmp_path))
    common = {"name": "StarGANDataset", "dataroot": images, "image_size": 16, "crop_size": 0, "test_count": 2}
    train = build_dataset(dict(common, is_train=True))
    flips = {bool(torch.equal(train[(0, s)]["img"], train[(0, 0)]["img"])) for s in range(12)}
    assert flips == {True, False}
    test = build_dataset(dict(common, is_train=False))
    assert all(torch.equal(test[(0, s)]["img"], test[(0, 0)]["img"]) for s in range(6))


@pytest.mark.parametrize("case, expect", [
    ("unknown_attr", "'Blonde_Hair'"),
    ("missing_image", "not in"),
    ("count_mismatch", "says 9 images"),
    ("bad_value", "values must be -1 or 1"),
    ("short_row", "expected a file name and 7 values"),
    ("bad_count_line", "line 1 must be the image count"),
    ("no_attr_file", "no attribute file"),
    ("attr_file_missing", "attribute file not found"),
    ("train_split_empty", "train split would be empty"),
    ("no_folder", "dataset folder not found"),
])
def test_celeba_errors_are_one_line(tmp_path, case, expect):
    root = str(tmp_path)
    cfg = {"name": "StarGANDataset", "test_count": 1}
    rows, count = None, None
    good = [f"{i + 1:06d}.png " + " ".join(["1"] * 7) for i in range(3)]
    if case == "missing_image":
        rows = good + ["999999.png " + " ".join(["1"] * 7)]
    elif case == "count_mismatch":
        count = 9
    elif case == "bad_value":
        rows = good[:2] + ["000003.png 1 1 2 1 1 1 1"]
    elif case == "short_row":
        rows = good[:2] + ["000003.png 1 1"]
    images, attr_file, _ = make_celeba(root, n=3, rows=rows, count=count)
    if case == "unknown_attr":
        cfg["selected_attrs"] = ["Blonde_Hair", "Male"]
    elif case == "bad_count_line":
        with open(attr_file, "r+") as f:
            text = f.read()
            f.seek(0)
            f.write("three" + text[1:])
    elif case == "no_attr_file":
        os.remove(attr_file)
    elif case == "attr_file_missing":
        cfg["attr_path"] = os.path.join(root, "nope.txt")
    elif case == "train_split_empty":
        cfg["test_count"] = 3
    elif case == "no_folder":
        images = os.path.join(root, "missing")
    with pytest.raises(DatasetError) as e:
        build_dataset(dict(cfg, dataroot=images))
    msg = one_line_error(e)
    assert expect in msg
    if case == "unknown_attr":
        assert "did you mean Blond_Hair" in msg and "valid:" in msg
    if case in ("missing_image", "count_mismatch", "bad_value", "short_row", "bad_count_line"):
        assert attr_file in msg
    if case == "missing_image":
        assert "999999.png" in msg


# ---- folders layout -------------------------------------------------------------------------------
@pytest.mark.parametrize("selected, expect", [
    (None, ["angry", "happy", "sad"]),
    (["sad", "angry"], ["sad", "angry"]),
    ("happy", ["happy"]),
])
def test_folders_layout_one_hot_labels(tmp_path, selected, expect):
    root = make_domains(tmp_path)
    ds = build_dataset({"name": "StarGANDataset", "dataroot": root, "mode": "folders", "selected_attrs": selected,
                        "image_size": 12})
    assert ds.selected_attrs == expect and ds.label_type == "exclusive"
    sizes = {"angry": 3, "happy": 4, "sad": 2}
    assert len(ds) == sum(sizes[n] for n in expect)
    for i in range(len(ds)):
        s = ds[(i, i)]
        assert s["img"].shape == (3, 12, 12)
        assert s["label"].sum() == 1
        k = int(s["label"].argmax())
        assert ["angry", "happy", "sad"][domain_of(s["img"])] == expect[k]


@pytest.mark.parametrize("setup, expect", [
    ("unknown", "unknown attribute name(s) 'hapy'"),
    ("empty_domain", "has no images"),
    ("no_subfolders", "one sub-folder per domain"),
])
def test_folders_layout_errors(tmp_path, setup, expect):
    root = make_domains(tmp_path / "d")
    cfg = {"name": "StarGANDataset", "dataroot": root, "mode": "folders"}
    if setup == "unknown":
        cfg["selected_attrs"] = ["hapy"]
    elif setup == "empty_domain":
        os.makedirs(os.path.join(root, "surprised"))
    else:
        os.makedirs(tmp_path / "flat")
        write_image(str(tmp_path / "flat" / "a.png"), 5)
        cfg["dataroot"] = str(tmp_path / "flat")
    with pytest.raises(DatasetError) as e:
        build_dataset(cfg)
    assert expect in one_line_error(e)


@pytest.mark.parametrize("cfg, error", [
    ({"mode": "lfw"}, ConfigError),
    ({"label_type": "single"}, ConfigError),
    ({"selected_attrs": []}, ConfigError),
    ({"selected_attrs": ["Male", "Male"]}, ConfigError),
])
def test_bad_arguments(tmp_path, cfg, error):
    images, _, _ = make_celeba(str(tmp_path))
    with pytest.raises(error):
        build_dataset(dict({"name": "StarGANDataset", "dataroot": images, "test_count": 1}, **cfg))


# ---- several datasets: padded labels + mask ---------------------------------------------------------
def test_multi_dataset_pads_labels_and_sets_mask(tmp_path):
    images, _, values = make_celeba(str(tmp_path / "celeba"))
    folders = make_domains(tmp_path / "rafd")
    ds = build_dataset({"name": "StarGANMultiDataset", "datasets": [
        {"name": "StarGANDataset", "dataroot": images, "selected_attrs": ["Blond_Hair", "Male"], "test_count": 1,
         "image_size": 8},
        {"name": "StarGANDataset", "dataroot": folders, "mode": "folders", "image_size": 8, "group_name": "rafd"},
    ]})
    assert ds.selected_attrs == ["Blond_Hair", "Male", "angry", "happy", "sad"]
    assert ds.label_groups == [{"name": "celeba", "size": 2, "type": "multi"},
                               {"name": "rafd", "size": 3, "type": "exclusive"}]
    assert len(ds) == 5 + 9
    for i in range(len(ds)):
        s = ds[(i, i)]
        assert s["label"].shape == (5,) and s["mask"].shape == (2,) and s["mask"].sum() == 1
        if s["mask"][0] == 1:
            assert s["label"][2:].abs().sum() == 0
            row = int(os.path.basename(s["img_path"])[:6]) - 1
            assert s["label"][:2].tolist() == values[row, [2, 4]].tolist()
        else:
            assert s["label"][:2].abs().sum() == 0 and s["label"][2:].sum() == 1
            assert int(s["label"][2:].argmax()) == domain_of(s["img"])
    _, loader, _ = build_dataloader({"name": "StarGANMultiDataset", "batch_size": 4, "datasets": [
        {"name": "EmbeddedAttributeDataset", "num_samples": 8},
        {"name": "StarGANDataset", "dataroot": folders, "mode": "folders", "image_size": 32}]})
    batch = next(iter(loader))
    assert batch["img"].shape == (4, 3, 32, 32) and batch["label"].shape == (4, 6) and batch["mask"].shape == (4, 2)


@pytest.mark.parametrize("datasets", [[], [{"name": "EmbeddedAttributeDataset"}], [{"dataroot": "x"}, {}]])
def test_multi_dataset_bad_config(datasets):
    with pytest.raises(ConfigError):
        build_dataset({"name": "StarGANMultiDataset", "datasets": datasets})


# ---- embedded demo attributes -----------------------------------------------------------------------
@pytest.mark.parametrize("attrs", [list(DEMO_ATTRS), ["grey", "warm"], ["bright"]])
@pytest.mark.parametrize("split", ["train", "test"])
def test_embedded_attributes_are_measurable(attrs, split):
    ds = build_dataset({"name": "EmbeddedAttributeDataset", "selected_attrs": attrs, "split": split,
                        "num_samples": 300})
    items = [ds[(i, i)] for i in range(min(len(ds), 300))]
    x = torch.stack([s["img"] for s in items])
    y = torch.stack([s["label"] for s in items]).numpy()
    assert x.shape[1:] == (3, 32, 32) and -1 <= x.min() and x.max() <= 1
    assert (predict_attributes(x, attrs) == y).all()
    assert 0.3 < y.mean() < 0.7  # both states of every attribute occur
    photos = {s["img_path"].split("@")[0] for s in items}
    assert photos.isdisjoint({"skimage:coffee", "skimage:rocket"}) == (split == "train")
    if split == "test":
        assert len(ds) == 2 * 8 * 2 ** len(attrs)
        assert all(torch.equal(ds[(0, s)]["img"], ds[(0, 0)]["img"]) for s in (1, 2))


def test_embedded_attributes_scores_and_errors():
    ds = build_dataset({"name": "EmbeddedAttributeDataset", "split": "test"})
    neutral, full = ds[0], ds[7]  # label combos 0 (none) and 7 (warm + bright + grey) of crop 0
    assert neutral["label"].tolist() == [0, 0, 0] and full["label"].tolist() == [1, 1, 1]
    a, b = attribute_scores(neutral["img"]), attribute_scores(full["img"])
    assert b["warm"] > a["warm"] + 0.15 and b["bright"] > a["bright"] + 0.3 and b["grey"] < a["grey"] - 0.04
    train = build_dataset({"name": "EmbeddedAttributeDataset", "num_samples": 10})
    assert torch.equal(train[(3, 5)]["img"], train[(3, 5)]["img"])
    assert not torch.equal(train[(3, 5)]["img"], train[(3, 6)]["img"])
    for bad in ({"selected_attrs": ["blond"]}, {"split": "val"}, {"size": 4000}):
        with pytest.raises((ConfigError, DatasetError)) as e:
            build_dataset(dict({"name": "EmbeddedAttributeDataset"}, **bad))
        one_line_error(e)


# ---- StarGAN v2 ---------------------------------------------------------------------------------------
IMG = 16
PADDLEGAN_TRAIN = [  # configs/starganv2_afhq.yaml of PaddleGAN, at IMG px
    {"name": "LoadImageFromFile", "key": "src"},
    {"name": "LoadImageFromFile", "key": "ref"},
    {"name": "LoadImageFromFile", "key": "ref2"},
    {"name": "Transforms", "input_keys": ["src", "ref", "ref2"], "pipeline": [
        {"name": "RandomResizedCropProb", "prob": 0.9, "size": [IMG, IMG], "scale": [0.8, 1.0],
         "ratio": [0.9, 1.1], "interpolation": "bilinear", "keys": ["image"] * 3},
        {"name": "Resize", "size": [IMG, IMG], "interpolation": "bilinear", "keys": ["image"] * 3},
        {"name": "RandomHorizontalFlip", "prob": 0.5, "keys": ["image"] * 3},
        {"name": "Transpose", "keys": ["image"] * 3},
        {"name": "Normalize", "mean": [127.5] * 3, "std": [127.5] * 3, "keys": ["image"] * 3}]},
]
PADDLEGAN_TEST = [
    {"name": "LoadImageFromFile", "key": "src"},
    {"name": "LoadImageFromFile", "key": "ref"},
    {"name": "Transforms", "input_keys": ["src", "ref"], "pipeline": [
        {"name": "Resize", "size": [IMG, IMG], "interpolation": "bicubic", "keys": ["image"] * 2},
        {"name": "Transpose", "keys": ["image"] * 2},
        {"name": "Normalize", "mean": [127.5] * 3, "std": [127.5] * 3, "keys": ["image"] * 2}]},
]


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("preprocess", ["paddlegan", None])
def test_v2_train_keys_and_classes(tmp_path, balanced, preprocess):
    root = make_domains(tmp_path, counts=(2, 5, 3), names=("cat", "dog", "wild"))
    ds = build_dataset({"name": "StarGANv2Dataset", "dataroot": root, "is_train": True, "balanced": balanced,
                        "preprocess": PADDLEGAN_TRAIN if preprocess else None, "img_size": None if preprocess else IMG})
    assert ds.domains == ["cat", "dog", "wild"] and ds.num_domains == 3 and len(ds) == 10
    src_classes, ref_classes = [], []
    for i in range(40):
        s = ds[(i % 10, i)]
        assert {"src", "src_cls", "ref", "ref2", "ref_cls"} <= set(s)
        for k in ("src", "ref", "ref2"):
            assert s[k].shape == (3, IMG, IMG) and -1 <= s[k].min() and s[k].max() <= 1
        assert s["src_cls"].dtype == torch.int64 and s["src_cls"].ndim == 0
        assert domain_of(s["src"]) == int(s["src_cls"])
        assert domain_of(s["ref"]) == domain_of(s["ref2"]) == int(s["ref_cls"])
        src_classes.append(int(s["src_cls"]))
        ref_classes.append(int(s["ref_cls"]))
        if i < 10 and not balanced:
            assert s["src_path"].endswith(ds.samples[i % 10][0][-7:])
    assert set(src_classes) == set(ref_classes) == {0, 1, 2}
    _, loader, _ = build_dataloader({"name": "StarGANv2Dataset", "dataroot": root, "is_train": True,
                                     "batch_size": 4, "preprocess": PADDLEGAN_TRAIN})
    batch = next(iter(loader))
    assert batch["src"].shape == (4, 3, IMG, IMG) and batch["ref_cls"].shape == (4,)


def test_v2_paddlegan_augmentation_is_per_image_and_seeded(tmp_path):
    root = make_domains(tmp_path, counts=(1, 1), names=("a", "b"))
    ds = build_dataset({"name": "StarGANv2Dataset", "dataroot": root, "preprocess": PADDLEGAN_TRAIN})
    same = [torch.equal(ds[(0, s)]["ref"], ds[(0, s)]["ref2"]) for s in range(20)]
    assert not all(same)  # ref and ref2 are the same file here but cropped / flipped apart
    assert torch.equal(ds[(0, 3)]["src"], ds[(0, 3)]["src"])


@pytest.mark.parametrize("layout", ["same", "src_ref"])
@pytest.mark.parametrize("test_count", [0, 4, 100])
def test_v2_test_pairs(tmp_path, layout, test_count):
    if layout == "same":
        root = make_domains(tmp_path, counts=(3, 4), names=("female", "male"))
    else:
        make_domains(tmp_path / "src", counts=(3, 4), names=("female", "male"))
        make_domains(tmp_path / "ref", counts=(2, 2), names=("female", "male"))
        root = str(tmp_path)
    ds = build_dataset({"name": "StarGANv2Dataset", "dataroot": root, "is_train": False, "test_count": test_count,
                        "preprocess": PADDLEGAN_TEST})
    full = 7
    assert len(ds) == (min(test_count, full) if test_count else full)
    pairs = []
    for i in range(len(ds)):
        s = ds[(i, 0)]
        assert set(s) >= {"src", "src_cls", "ref", "ref_cls"} and "ref2" not in s
        assert domain_of(s["src"]) == int(s["src_cls"]) and domain_of(s["ref"]) == int(s["ref_cls"])
        assert s["src_path"] != s["ref_path"]
        pairs.append((int(s["src_cls"]), int(s["ref_cls"])))
        assert torch.equal(ds[(i, 5)]["src"], s["src"])
    assert {p[0] for p in pairs} == {0, 1}
    if layout == "src_ref":
        assert all(s["ref_path"].startswith(str(tmp_path / "ref")) for s in (ds[0], ds[1]))


@pytest.mark.parametrize("setup, expect", [
    ("missing", "dataset folder not found"),
    ("flat", "one sub-folder per domain"),
    ("empty_domain", "has no images"),
    ("src_ref_differ", "differ"),
])
def test_v2_errors(tmp_path, setup, expect):
    root = str(tmp_path / "data")
    is_train = True
    if setup == "flat":
        write_image(os.path.join(root, "a.png"), 3)
    elif setup == "empty_domain":
        make_domains(root, counts=(2, 2), names=("a", "b"))
        os.makedirs(os.path.join(root, "c"))
    elif setup == "src_ref_differ":
        make_domains(os.path.join(root, "src"), counts=(1, 1), names=("a", "b"))
        make_domains(os.path.join(root, "ref"), counts=(1, 1), names=("a", "c"))
        is_train = False
    with pytest.raises(DatasetError) as e:
        build_dataset({"name": "StarGANv2Dataset", "dataroot": root, "is_train": is_train})
    assert expect in one_line_error(e)


def test_v2_unreadable_image_names_file(tmp_path):
    root = make_domains(tmp_path, counts=(1, 1), names=("a", "b"))
    with open(os.path.join(root, "b", "000.png"), "wb") as f:
        f.write(b"not a png")
    ds = build_dataset({"name": "StarGANv2Dataset", "dataroot": root, "is_train": False, "preprocess": PADDLEGAN_TEST})
    with pytest.raises(DatasetError) as e:
        [ds[i] for i in range(len(ds))]
    assert "000.png" in one_line_error(e)


# ---- RandomResizedCropProb --------------------------------------------------------------------------
def _crop_pipeline(**kw):
    step = dict({"name": "RandomResizedCropProb", "prob": 1.0, "size": [8, 8], "scale": [0.5, 1.0],
                 "ratio": [0.75, 1.33]}, **kw)
    return Preprocess([{"name": "Transforms", "input_keys": ["a", "b"], "pipeline": [step]}])


@pytest.mark.parametrize("shape", [(20, 30, 3), (40, 25, 3), (9, 9, 1)])
def test_random_resized_crop_prob(shape):
    img = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    rng = np.random.default_rng(1)
    out = _crop_pipeline()({"a": img, "b": img}, rng)
    assert out["a"].shape == out["b"].shape == (shape[2], 8, 8)
    assert any(not np.array_equal(o["a"], o["b"]) for o in
               (_crop_pipeline()({"a": img, "b": img}, np.random.default_rng(s)) for s in range(5)))
    kept = _crop_pipeline(prob=0.0)({"a": img, "b": img}, rng)
    assert np.array_equal(kept["a"], img.transpose(2, 0, 1))


def test_random_resized_crop_falls_back_to_centre_crop():
    img = np.random.default_rng(0).integers(0, 256, (40, 10, 3)).astype(np.uint8)
    out = _crop_pipeline()({"a": img, "b": img}, np.random.default_rng(0))  # no 0.5..1 area crop fits
    centre = cv2.resize(img[13:26], (8, 8), interpolation=cv2.INTER_LINEAR)  # ratio 0.75: 13 x 10
    assert np.array_equal(out["a"], centre.transpose(2, 0, 1)) and np.array_equal(out["b"], out["a"])


@pytest.mark.parametrize("kw", [{"scale": [1.0, 0.5]}, {"ratio": [0]}, {"interpolation": "fancy"},
                                {"scale": [0, 1]}, {"size": [1, 2, 3]}])
def test_random_resized_crop_bad_args(kw):
    with pytest.raises(ConfigError):
        _crop_pipeline(**kw)


# ---- embedded demo domains (v2) ---------------------------------------------------------------------
@pytest.mark.parametrize("domains", [["warm", "cool", "grey"], ["grey", "cool"]])
@pytest.mark.parametrize("split", ["train", "test"])
def test_embedded_domains(domains, split):
    ds = build_dataset({"name": "EmbeddedDomainDataset", "domains": domains, "split": split, "num_samples": 60})
    assert ds.num_domains == len(domains)
    items = [ds[(i, i)] for i in range(min(len(ds), 60))]
    keys = ("src", "ref", "ref2") if split == "train" else ("src", "ref")
    for k in keys:
        x = torch.stack([s[k] for s in items])
        cls = np.array([int(s["ref_cls" if k.startswith("ref") else "src_cls"]) for s in items])
        assert x.shape[1:] == (3, 32, 32)
        assert (predict_domain(x, domains) == cls).all()
    if split == "test":
        assert "ref2" not in items[0] and len(ds) == 16 * len(domains)
        assert all(int(s["src_cls"]) != int(s["ref_cls"]) for s in items)
    else:  # styles vary inside a domain
        assert not torch.equal(items[0]["ref"], items[0]["ref2"])
    for bad in ({"domains": ["warm"]}, {"domains": ["hot", "cool"]}, {"split": "val"}):
        with pytest.raises((ConfigError, DatasetError)):
            build_dataset(dict({"name": "EmbeddedDomainDataset"}, **bad))


# ---- the shipped configs' dataset sections ---------------------------------------------------------
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shipped(name):
    path = os.path.join(ROOT, "configs", name)
    if not os.path.isfile(path):
        pytest.skip(f"configs/{name} not written yet")
    from ppgan.utils.config import load_config

    return load_config(path)["dataset"]


@pytest.mark.parametrize("name, domains", [("starganv2_afhq.yaml", ("cat", "dog", "wild")),
                                           ("starganv2_celeba_hq.yaml", ("female", "male"))])
def test_shipped_v2_configs_build(tmp_path, name, domains):
    cfgs = shipped(name)
    root = make_domains(tmp_path / "data", counts=(3,) * len(domains), names=domains)
    for split in ("train", "test"):
        _, loader, _ = build_dataloader(dict(cfgs[split], dataroot=root, num_workers=0, batch_size=2),
                                        is_train=split == "train")
        batch = next(iter(loader))
        size = batch["src"].shape[-1]
        assert batch["src"].shape == batch["ref"].shape == (2, 3, size, size) and size >= 32
        assert ("ref2" in batch) == (split == "train") and batch["src_cls"].dtype == torch.int64


def test_shipped_v1_configs_build(tmp_path):
    cfgs = shipped("stargan_celeba.yaml")
    images, attr_file, _ = make_celeba(str(tmp_path), n=5)
    train = build_dataset(dict(cfgs["train"], dataroot=images, attr_path=attr_file, test_count=2))
    assert len(train) == 3 and train[0]["img"].shape == (3, 128, 128) and train[0]["label"].shape == (5,)
    demo = shipped("stargan_demo.yaml")
    for split in ("train", "test"):
        ds = build_dataset(dict(demo[split], num_samples=4) if split == "train" else demo[split])
        assert ds[0]["img"].shape[0] == 3 and ds[0]["label"].shape == (len(ds.selected_attrs),)


def test_shipped_v2_demo_config_builds():
    cfgs = shipped("starganv2_demo.yaml")
    for split in ("train", "test"):
        cfg = dict(cfgs[split], num_workers=0, batch_size=2)
        if cfg.get("name") in ("EmbeddedDomainDataset",) and split == "train":
            cfg["num_samples"] = 4
        _, loader, _ = build_dataloader(cfg, is_train=split == "train")
        batch = next(iter(loader))
        assert batch["src"].shape == batch["ref"].shape and ("ref2" in batch) == (split == "train")


@pytest.mark.parametrize("case, expect", [
    ("unknown_attr", "unknown attribute name(s) 'Blonde_Hair'"),
    pytest.param("missing_image", "are not in", marks=pytest.mark.slow),
    ("count_mismatch", "says 7 images"),
])
def test_training_cli_reports_data_errors_in_one_line(tmp_path, case, expect):
    """tools/main.py with configs/stargan_celeba.yaml and a bad data folder: `error: ...`, exit 2."""
    import subprocess
    import sys

    if not os.path.isfile(os.path.join(ROOT, "configs", "stargan_celeba.yaml")):
        pytest.skip("configs/stargan_celeba.yaml not written yet")
    rows = None
    if case == "missing_image":
        rows = [f"{i + 1:06d}.png " + " ".join(["1"] * 7) for i in range(4)] + ["000099.png " + " ".join(["1"] * 7)]
    images, attr_file, _ = make_celeba(str(tmp_path), n=4, rows=rows, count=7 if case == "count_mismatch" else None)
    opts = [f"dataset.train.dataroot={images}", f"dataset.train.attr_path={attr_file}", "dataset.train.test_count=1",
            f"dataset.test.dataroot={images}", f"dataset.test.attr_path={attr_file}", "dataset.test.test_count=1"]
    if case == "unknown_attr":
        opts.append("dataset.train.selected_attrs=[Blonde_Hair,Male]")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "main.py"), "-c",
                           os.path.join(ROOT, "configs", "stargan_celeba.yaml"), "--output-dir", str(tmp_path / "out"),
                           "--device", "cpu", "-o", *opts], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
