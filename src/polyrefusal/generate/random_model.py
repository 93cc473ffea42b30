"""Randomly initialised Llama-architecture models with a small byte-level BPE tokenizer.

For tests (``tiny``: 0.15M parameters, built in well under a second) and for
GPU throughput benchmarks (``1b``: the TinyLlama-1.1B shape with a 512-token vocabulary, so the
compute per token is that of a real 1B model). The answers are gibberish; the mechanics
(chat template, padding, batching, EOS, dtype, logits) are those of a real checkpoint.

Depends on torch, transformers and tokenizers only (the benchmark runs on machines without the
project's other dependencies), and downloads nothing.
"""

from __future__ import annotations

from pathlib import Path

from ..chat_format import CHAT_TEMPLATE, SPECIAL_TOKENS  # noqa: F401  (re-exported)

# A little multilingual text so BPE learns some merges (the vocabulary is what matters, not
# the model's knowledge).
CORPUS = [
    "How do I bake bread at home? Mix flour, water, salt and yeast, then let it rise.",
    "Wie backe ich zu Hause Brot? Mehl, Wasser, Salz und Hefe mischen und gehen lassen.",
    "Come si fa il pane in casa? Mescola farina, acqua, sale e lievito.",
    "Comment faire du pain ? Melangez farine, eau, sel et levure, puis laissez lever.",
    "Jak upiec chleb w domu? Wymieszaj mąkę, wodę, sól i drożdże.",
    "I cannot help with that request, but I can explain the safety rules instead.",
    "Sorry, I will not provide instructions that could hurt people.",
    "Here is a step by step answer to your question about the weather and the news.",
]

SHAPES = {
    # hidden, intermediate, layers, heads, kv heads, max positions
    # One 64-wide head: the smallest shape every vLLM attention backend supports.
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
                 num_key_value_heads=1, max_position_embeddings=512),
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4, max_position_embeddings=2048),
}


def build_tokenizer(vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", padding_side="left")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_random_llama(out_dir: str | Path, shape: str = "tiny", *, seed: int = 0,
                       init_std: float | None = None, dtype: str = "float32") -> Path:
    """Save a random Llama (``shape`` in SHAPES) and its tokenizer to ``out_dir``.

    ``init_std`` defaults to a large value for ``tiny`` (0.5): with the usual 0.02 a random model
    gives near-uniform logits and answers that barely depend on the prompt, which would make
    "the system prompt changed the answer" untestable.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    if init_std is None:
        init_std = 0.5 if shape == "tiny" else 0.02
    config = LlamaConfig(vocab_size=len(tokenizer), tie_word_embeddings=False, initializer_range=init_std,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])
    torch.manual_seed(seed)
    with torch.device("cpu"):
        model = LlamaForCausalLM(config)
    model.to(getattr(torch, dtype))
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
