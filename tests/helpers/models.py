"""The project's embedded architecture at test size: an untrained tiny Llama and its tokenizer,
saved as a model directory (TRL and the transformers backend load models from a path)."""

from __future__ import annotations

from pathlib import Path


def tiny_model_dir(dest: Path, vocab_size: int = 300, max_positions: int = 256) -> Path:
    """Save a randomly initialised tiny model (seed 0) and a tokenizer trained on the English
    seed texts in `dest`; returns `dest`."""
    from polyrefusal.training.embedded import build_model, build_tokenizer, seed_examples

    texts, _ = seed_examples(["en"])
    tokenizer = build_tokenizer(texts, vocab_size)
    model = build_model(tokenizer, dict(seed=0, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=max_positions))
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest
