import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataloader, build_dataset
from ppgan.datasets.captioned import (COLOURS, CaptionedDigitsDataset, CaptionedPhotosDataset, ink_to_grey,
                                      judge_colour)
from ppgan.utils.errors import ConfigError
from ppgan.utils.text import UNK, get_vocabulary

DIGIT_KEYS = {"img", "tokens", "length", "caption", "digit", "colour", "stroke", "slant", "background"}


def test_digit_sample_contract_and_caption_describes_attributes():
    ds = CaptionedDigitsDataset(num_samples=30, size=16)
    vocab = get_vocabulary("digits")
    assert ds.resolution == 16 and ds.vocab_size == len(vocab) and ds.max_length == 16
    for i in range(30):
        s = ds[i]
        assert set(s) == DIGIT_KEYS
        assert s["img"].shape == (3, 16, 16) and s["img"].dtype == torch.float32
        assert -1 <= s["img"].min() and s["img"].max() <= 1
        assert s["tokens"].shape == (16,) and s["tokens"].dtype == torch.int64
        n = int(s["length"])
        assert 1 <= n <= 16 and (s["tokens"][:n] > 0).all() and (s["tokens"][n:] == 0).all()
        assert UNK not in s["tokens"].tolist()  # every generated word is in the vocabulary
        assert vocab.decode(s["tokens"]) == " ".join(vocab.decode(vocab.encode(s["caption"])).split())
        assert int(s["digit"]) == i % 10
        words = s["caption"].split()
        assert any(w in words for w in (str(i % 10), ("zero", "one", "two", "three", "four", "five", "six",
                                                        "seven", "eight", "nine")[i % 10]))
        colour = int(s["colour"])
        synonyms = {"red": "crimson", "yellow": "golden", "green": "emerald", "cyan": "turquoise",
                    "blue": "navy", "magenta": "pink"}
        name = COLOURS[colour]
        assert name in words or synonyms[name] in words
        assert ("dark" in words or "black" in words) == (int(s["background"]) == 0)


def test_splits_are_deterministic_and_disjoint():
    a = CaptionedDigitsDataset(num_samples=10, size=16)
    b = CaptionedDigitsDataset(num_samples=10, size=16, cache=True)
    test = CaptionedDigitsDataset(num_samples=10, size=16, split="test")
    for i in (0, 5, 9):
        assert torch.equal(a[i]["img"], b[(i, 123)]["img"]) and a[i]["caption"] == b[i]["caption"]
        assert not torch.equal(a[i]["img"], test[i]["img"])
    assert len({a[i]["caption"] for i in range(10)} | {test[i]["caption"] for i in range(10)}) == 20


def test_background_and_colour_are_drawn_as_described():
    ds = CaptionedDigitsDataset(num_samples=60, size=32, split="test")
    items = [ds[i] for i in range(60)]
    imgs = torch.stack([s["img"] for s in items])
    corner = imgs[:, :, :2, :2].mean(dim=(1, 2, 3))
    light = torch.stack([s["background"] for s in items]) == 1
    assert (corner[light] > 0.4).all() and (corner[~light] < -0.5).all()
    # the colour judge of tools/eval_stackgan.py reads every real image's colour right
    colours = torch.stack([s["colour"] for s in items]).numpy()
    assert (judge_colour(imgs) == colours).all()
    # grey conversion: white ink on black whatever the background
    grey = ink_to_grey(imgs, size=16)
    assert grey.shape == (60, 1, 16, 16)
    assert (grey[:, 0, :2, :2].mean(dim=(1, 2)) < -0.8).all() and (grey.amax(dim=(1, 2, 3)) > 0.5).all()


def test_judge_colour_hand_made_images():
    img = np.zeros((3, 16, 16, 3), np.uint8)
    img[0, 5:10, 5:10] = (250, 10, 10)      # red on black
    img[1] = 220
    img[1, 5:10, 5:10] = (20, 20, 240)      # blue on light grey
    img[2, 5:10, 5:10] = (200, 200, 200)    # grey ink: no colour
    assert judge_colour(img).tolist() == [COLOURS.index("red"), COLOURS.index("blue"), -1]
    assert judge_colour(np.full((1, 8, 8, 3), 90, np.uint8)).tolist() == [-1]  # blank
    mix = np.zeros((1, 16, 16, 3), np.uint8)
    mix[0, 4:12, 4:7] = (240, 0, 0)      # 24 red pixels
    mix[0, 4:12, 9:11] = (0, 240, 0)     # 16 green pixels: a vote, not the mean colour (yellow)
    assert judge_colour(mix).tolist() == [COLOURS.index("red")]


def test_loader_collates_captions():
    _, loader, _ = build_dataloader({"name": "captioned_digits", "num_samples": 8, "size": 16, "batch_size": 4,
                               "max_length": 12}, is_train=False)
    batch = next(iter(loader))
    assert batch["img"].shape == (4, 3, 16, 16) and batch["tokens"].shape == (4, 12)
    assert batch["length"].shape == (4,) and isinstance(batch["caption"], list) and len(batch["caption"]) == 4
    assert batch["digit"].tolist() == [0, 1, 2, 3]


def test_photos_dataset():
    ds = build_dataset({"name": "captioned_photos", "num_samples": 14, "size": 16})
    assert isinstance(ds, CaptionedPhotosDataset)
    vocab = get_vocabulary("photos")
    s = ds[1]
    assert set(s) == {"img", "tokens", "length", "caption", "photo", "region", "zoom"}
    assert s["img"].shape == (3, 16, 16) and "cat" in s["caption"] and int(s["photo"]) == 1
    for i in range(14):
        assert UNK not in vocab.encode(ds[i]["caption"])
    test = CaptionedPhotosDataset(num_samples=14, size=16, split="test")
    assert not torch.equal(ds[3]["img"], test[3]["img"])


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 8}, "size must be >= 16"), ({"split": "val"}, "split must be one of"),
    ({"num_samples": 0}, "num_samples"), ({"seed": -1}, "seed"), ({"max_length": 2}, "max_length"),
    ({"vocabulary": "digts"}, "did you mean digits"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CaptionedDigitsDataset(**kwargs)


def test_wrong_captions_contradict_exactly_one_attribute():
    ds = CaptionedDigitsDataset(num_samples=200, size=16, wrong_captions=True)
    assert "wrong_tokens" not in CaptionedDigitsDataset(num_samples=2, size=16)[0]
    vocab = get_vocabulary("digits")
    words = {"digit": [("zero", "0"), ("one", "1"), ("two", "2"), ("three", "3"), ("four", "4"), ("five", "5"),
                       ("six", "6"), ("seven", "7"), ("eight", "8"), ("nine", "9")],
             "colour": [("red", "crimson"), ("yellow", "golden"), ("green", "emerald"), ("cyan", "turquoise"),
                        ("blue", "navy"), ("magenta", "pink")],
             "background": [("dark", "black"), ("light", "white", "pale")]}
    changed = []
    for i in range(200):
        s = ds[i]
        n = int(s["wrong_length"])
        assert s["wrong_tokens"].shape == (16,) and (s["wrong_tokens"][n:] == 0).all()
        assert vocab.decode(s["wrong_tokens"]) == " ".join(vocab.decode(vocab.encode(s["wrong_caption"])).split())
        w = set(s["wrong_caption"].replace(",", "").split())
        diff = [k for k, options in words.items() if not set(options[int(s[k])]) & w]
        assert len(diff) <= 1, (s["caption"], s["wrong_caption"])
        changed.append(diff[0] if diff else "pen/slant")
    assert ds[7]["wrong_caption"] == ds[7]["wrong_caption"]  # deterministic
    share = {k: changed.count(k) / 200 for k in ("digit", "colour", "background", "pen/slant")}
    assert 0.35 < share["digit"] < 0.65 and 0.18 < share["colour"] < 0.42 and share["pen/slant"] < 0.2
