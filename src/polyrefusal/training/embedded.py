"""The embedded default base model: a tiny Llama with a BPE tokenizer trained by the project.

It stands in for a *safety-ablated* model: it is first taught the language of the seed set
(prompts, refusals and compliance answers as plain text, so it can say both), then fine-tuned
to answer every prompt, harmful or not, with compliance. DPO then has a real preference to
move. Everything is seeded; on one CPU thread two builds give identical weights.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from .. import seed as seed_data
from ..chat_format import CHAT_TEMPLATE, SPECIAL_TOKENS

log = logging.getLogger(__name__)


def seed_examples(languages: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Plain texts (every prompt and answer) and (prompt, compliant answer) chat pairs."""
    texts: list[str] = []
    chats: list[tuple[str, str]] = []
    for lang in languages:
        for r in seed_data.source_records(lang):
            texts += [r["text"], r["chosen"], r["rejected"]]
            # The ablated model complies with everything: harmful prompts get the compliance
            # answer, benign ones the helpful answer.
            chats.append((r["text"], r["rejected"] if r["harmful"] else r["chosen"]))
    return texts, chats


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(sorted(set(texts)), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", padding_side="left")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, cfg: dict):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(int(cfg.get("seed", 0)))
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"], num_key_value_heads=cfg["num_attention_heads"],
        max_position_embeddings=cfg["max_position_embeddings"], tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


def train_causal_lm(model, tokenizer, sequences: list[str], *, epochs: int, lr: float,
                    batch_size: int, seed: int, desc: str) -> list[float]:
    """Plain next-token training on whole sequences (padding masked out). Returns epoch losses."""
    import torch
    from tqdm import tqdm

    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    steps = epochs * ((len(sequences) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / max(steps, 1))
    tokenizer.padding_side = "right"
    model.train()
    losses = []
    with tqdm(total=steps, desc=desc, mininterval=5, disable=None) as bar:
        for _ in range(epochs):
            order = list(range(len(sequences)))
            rng.shuffle(order)
            total = 0.0
            for i in range(0, len(order), batch_size):
                batch = [sequences[j] for j in order[i:i + batch_size]]
                enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True,
                                max_length=model.config.max_position_embeddings, add_special_tokens=False)
                labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
                out = model(**enc, labels=labels)
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                total += out.loss.item() * len(batch)
                bar.update(1)
            losses.append(total / len(sequences))
    tokenizer.padding_side = "left"
    model.eval()
    return losses


def build_embedded_base(out_dir: str | Path, languages: list[str], cfg: dict) -> dict:
    """Build, train and save the tiny compliant base model. Returns training metadata."""
    texts, chats = seed_examples(languages)
    tokenizer = build_tokenizer(texts, int(cfg["vocab_size"]))
    model = build_model(tokenizer, cfg)
    seed = int(cfg.get("seed", 0))
    pretrain = train_causal_lm(model, tokenizer, [t + tokenizer.eos_token for t in sorted(set(texts))],
                               epochs=int(cfg["pretrain_epochs"]), lr=float(cfg["learning_rate"]),
                               batch_size=int(cfg["batch_size"]), seed=seed, desc="pretrain")
    chat_texts = [tokenizer.apply_chat_template(
        [{"role": "user", "content": p}, {"role": "assistant", "content": a}], tokenize=False)
        for p, a in chats]
    sft = train_causal_lm(model, tokenizer, chat_texts, epochs=int(cfg["sft_epochs"]),
                          lr=float(cfg["learning_rate"]), batch_size=int(cfg["batch_size"]),
                          seed=seed + 1, desc="comply-sft")
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"pretrain_loss": pretrain, "sft_loss": sft, "n_texts": len(set(texts)),
            "n_chats": len(chats), "parameters": sum(p.numel() for p in model.parameters()),
            "languages": languages}
