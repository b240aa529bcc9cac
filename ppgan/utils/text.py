"""Word-level tokenizer and the built-in vocabularies of the captioned datasets (text -> image).

Captions are lower-cased and split into words: runs of letters `[a-z]+` and single numerals
`0`-`9` ("close-up" -> "close", "up"; "17" -> "1", "7"); every other character separates words.
Ids are fixed by a built-in word list, not by the data, so a weight file only needs to name its
vocabulary ('digits' or 'photos') for an app to rebuild the same tokenizer:

    id 0  `<pad>`  padding after the end of a caption
    id 1  `<unk>`  any word the vocabulary does not know (kept as one token, never an error)
    id 2+ the words of the list, in sorted order

A caption with no word at all (empty or only punctuation) is a `ConfigError`: there is nothing
for a text encoder to read.
"""
import re

import torch

from .errors import ConfigError, closest

__all__ = ["PAD", "UNK", "Vocabulary", "VOCABULARIES", "get_vocabulary", "tokenize"]

PAD, UNK = 0, 1
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"

_WORD = re.compile(r"[a-z]+|[0-9]")

# Every word the caption generators of ppgan/datasets/captioned.py can write, plus a few common
# words a user may type ("image", "of"). Adding a word changes the ids of the words after it, so
# a vocabulary's list is frozen once weights were trained with it; add a new name instead.
_DIGIT_WORDS = (
    "zero one two three four five six seven eight nine 0 1 2 3 4 5 6 7 8 9 "
    "red crimson yellow golden green emerald cyan turquoise blue navy magenta pink "
    "thin slim fine thick bold heavy "
    "slanted leaning tilted left right upright straight standing up "
    "dark black light white pale background "
    "a an the digit number written drawn in with and on over to of stroke strokes image picture"
)
_PHOTO_WORDS = (
    "astronaut cat coffee cup rocket galaxies space cells tissue retina eye "
    "close up wide view crop detail part of the a an from at in on top bottom left right centre center middle "
    "corner photo picture image showing"
)

VOCABULARIES = {
    "digits": tuple(sorted(set(_DIGIT_WORDS.split()))),
    "photos": tuple(sorted(set(_PHOTO_WORDS.split()))),
}


def tokenize(text):
    """The words of `text`: lower-cased runs of letters and single numerals, in order.

    Args:
        text (str): a caption.

    Returns:
        list[str]: e.g. "A thin RED 7, close-up!" -> ['a', 'thin', 'red', '7', 'close', 'up'].
    """
    if not isinstance(text, str):
        raise ConfigError(f"a caption must be a string, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> id table with padding (id 0) and unknown-word (id 1) tokens.

    Args:
        words (Iterable[str]): the known words (duplicates and the two special tokens are
            dropped; order is kept, so pass a sorted list for ids independent of the source).
        name (str | None): the built-in name this table was made from, if any.

    Attributes:
        PAD (int): 0. UNK (int): 1. name (str | None). words (list[str]): id -> token.
    """

    PAD = PAD
    UNK = UNK

    def __init__(self, words, name=None):
        self.name = name
        self.words = [PAD_TOKEN, UNK_TOKEN]
        self._ids = {PAD_TOKEN: PAD, UNK_TOKEN: UNK}
        for w in words:
            w = str(w).lower()
            if not _WORD.fullmatch(w):
                raise ConfigError(f"vocabulary word {w!r} is not one token (letters only or one numeral)")
            if w not in self._ids:
                self._ids[w] = len(self.words)
                self.words.append(w)

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return str(word).lower() in self._ids

    def __repr__(self):
        return f"Vocabulary(name={self.name!r}, size={len(self)})"

    def id_of(self, word):
        """The id of one word (`UNK` when unknown)."""
        return self._ids.get(str(word).lower(), UNK)

    def encode(self, text):
        """Caption -> list of ids (unknown words -> `UNK`). Raises ConfigError when it has no word."""
        words = tokenize(text)
        if not words:
            raise ConfigError(f"empty caption {text!r}: write a few words, e.g. 'a thin red seven'")
        return [self._ids.get(w, UNK) for w in words]

    def unknown_words(self, text):
        """The words of `text` this vocabulary does not know (in order, without repeats)."""
        seen = []
        for w in tokenize(text):
            if w not in self._ids and w not in seen:
                seen.append(w)
        return seen

    def decode(self, ids):
        """Ids -> text; padding is dropped, unknown ids read `<unk>`."""
        out = []
        for i in ids:
            i = int(i)
            if i == PAD:
                continue
            out.append(self.words[i] if 0 <= i < len(self.words) else UNK_TOKEN)
        return " ".join(out)

    def encode_batch(self, texts, max_length=None):
        """Captions -> padded id matrix and lengths.

        Args:
            texts (Sequence[str]): N captions, each with at least one word.
            max_length (int | None): L, the padded length; longer captions are cut to L words.
                None: the longest caption's length.

        Returns:
            tuple[Tensor, Tensor]: tokens int64 [N, L] (pad 0, unknown 1) and lengths int64 [N]
            (each in 1..L).
        """
        if isinstance(texts, str):
            texts = [texts]
        if max_length is not None and int(max_length) < 1:
            raise ConfigError(f"max_length must be >= 1, got {max_length}")
        encoded = [self.encode(t) for t in texts]
        if not encoded:
            raise ConfigError("no captions given")
        length = int(max_length) if max_length is not None else max(len(e) for e in encoded)
        tokens = torch.zeros(len(encoded), length, dtype=torch.int64)
        lengths = torch.zeros(len(encoded), dtype=torch.int64)
        for row, ids in enumerate(encoded):
            ids = ids[:length]
            tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
            lengths[row] = len(ids)
        return tokens, lengths


def get_vocabulary(name_or_words):
    """A built-in vocabulary by name ('digits', 'photos'), or one built from a list of words.

    Args:
        name_or_words (str | Sequence[str] | Vocabulary): the name, the words, or a Vocabulary
            (returned as is).

    Returns:
        Vocabulary
    """
    if isinstance(name_or_words, Vocabulary):
        return name_or_words
    if isinstance(name_or_words, str):
        if name_or_words not in VOCABULARIES:
            hint = closest(name_or_words, VOCABULARIES)
            extra = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise ConfigError(f"unknown vocabulary '{name_or_words}' (known: {', '.join(VOCABULARIES)}){extra}")
        return Vocabulary(VOCABULARIES[name_or_words], name=name_or_words)
    try:
        words = list(name_or_words)
    except TypeError:
        raise ConfigError(f"a vocabulary is a name or a list of words, got {name_or_words!r}") from None
    return Vocabulary(words)
