import pytest
import torch

from ppgan.utils.errors import ConfigError
from ppgan.utils.text import PAD, UNK, VOCABULARIES, Vocabulary, get_vocabulary, tokenize


def test_tokenize_lowercases_and_splits_numerals_and_punctuation():
    assert tokenize("A thin RED 7, close-up!") == ["a", "thin", "red", "7", "close", "up"]
    assert tokenize("17") == ["1", "7"]
    assert tokenize("  ...  ") == []


def test_builtin_vocabularies_have_fixed_sorted_ids():
    v = get_vocabulary("digits")
    assert v.words[:2] == ["<pad>", "<unk>"] and v.PAD == PAD == 0 and v.UNK == UNK == 1
    assert v.words[2:] == sorted(VOCABULARIES["digits"]) and len(v) == len(VOCABULARIES["digits"]) + 2
    # ids do not depend on construction: a second build gives the same table
    assert get_vocabulary("digits").words == v.words
    assert v.id_of("red") == v.words.index("red") >= 2
    assert len(get_vocabulary("photos")) == len(VOCABULARIES["photos"]) + 2


def test_encode_decode_round_trip_and_unknown_words():
    v = get_vocabulary("digits")
    ids = v.encode("a thin red seven slanted left on a dark background")
    assert UNK not in ids and PAD not in ids and len(ids) == 10
    assert v.decode(ids + [PAD, PAD]) == "a thin red seven slanted left on a dark background"
    ids = v.encode("a sparkly red seven")
    assert ids[1] == UNK and ids[0] == v.id_of("a") and ids[2] == v.id_of("red")
    assert v.unknown_words("a sparkly shiny red sparkly seven") == ["sparkly", "shiny"]
    assert v.decode(ids) == "a <unk> red seven"


def test_encode_batch_pads_truncates_and_reports_lengths():
    v = get_vocabulary("digits")
    tokens, lengths = v.encode_batch(["a red seven", "blue two"])
    assert tokens.dtype == torch.int64 and tokens.shape == (2, 3)
    assert lengths.tolist() == [3, 2] and tokens[1, 2] == PAD
    assert tokens[1, :2].tolist() == [v.id_of("blue"), v.id_of("two")]
    tokens, lengths = v.encode_batch(["a red seven on a dark background"], max_length=4)
    assert tokens.shape == (1, 4) and lengths.tolist() == [4]
    tokens, lengths = v.encode_batch("one", max_length=5)
    assert tokens.tolist() == [[v.id_of("one"), 0, 0, 0, 0]] and lengths.tolist() == [1]


@pytest.mark.parametrize("text", ["", "   ", "?!,"])
def test_empty_caption_is_a_config_error(text):
    with pytest.raises(ConfigError, match="empty caption"):
        get_vocabulary("digits").encode(text)
    with pytest.raises(ConfigError, match="empty caption"):
        get_vocabulary("digits").encode_batch(["a red one", text])


def test_bad_vocabulary_names_and_words():
    with pytest.raises(ConfigError, match="did you mean digits"):
        get_vocabulary("digit")
    with pytest.raises(ConfigError, match="not one token"):
        Vocabulary(["red", "two words"])
    with pytest.raises(ConfigError):
        tokenize(None)
    custom = get_vocabulary(["b", "a", "a"])
    assert custom.words == ["<pad>", "<unk>", "b", "a"] and get_vocabulary(custom) is custom
