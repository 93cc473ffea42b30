"""The transformers backend with a tiny, randomly initialised Marian model built here (no
downloads): it loads from a local directory, runs batched, and its outputs are cached."""

from __future__ import annotations

import shutil

import pytest

from polyrefusal.translate.driver import translate_records

WORDS = "<pad> </s> <unk> hello world how are you the a make please help me with this".split()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-marian")
    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(path)
    torch.manual_seed(0)
    config = MarianConfig(vocab_size=len(WORDS), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=0,
                          eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=1)
    MarianMTModel(config).save_pretrained(path)
    return path


def test_tiny_model_runs_batched_and_caches(tiny_model, tmp_path, monkeypatch):
    from polyrefusal.translate.transformers_mt import TransformersTranslator
    batches = []
    original = TransformersTranslator.translate

    def spy(self, texts, source, target):
        batches.append(len(texts))
        return original(self, texts, source, target)
    monkeypatch.setattr(TransformersTranslator, "translate", spy)

    records = [{"id": f"r{i}", "text": f"hello world {i} please help me"} for i in range(5)]
    options = {"model": str(tiny_model), "batch_size": 2, "max_new_tokens": 6, "device": "cpu"}
    out, usage = translate_records(records, backend="transformers", source="en", target="de",
                                   memory_dir=str(tmp_path), options=options)
    assert batches == [2, 2, 1]
    assert usage["requests"] == 3 and usage["characters_billed"] == 0 and usage["misses"] == 5
    assert all(isinstance(r["text"], str) and r["source_text"].startswith("hello") for r in out)

    # Cached: the second run never loads the model; batch size and device are not in the key.
    out2, usage2 = translate_records(records, backend="transformers", source="en", target="de",
                                     memory_dir=str(tmp_path),
                                     options={**options, "batch_size": 4, "device": "cpu"})
    assert batches == [2, 2, 1] and usage2["hits"] == 5 and out2 == out

    # A local model is keyed by content, not path: the same model elsewhere hits the memory.
    moved = shutil.copytree(tiny_model, tmp_path / "elsewhere")
    _, usage_moved = translate_records(records, backend="transformers", source="en", target="de",
                                       memory_dir=str(tmp_path), options={**options, "model": str(moved)})
    assert usage_moved["hits"] == 5 and batches == [2, 2, 1]

    # Decoding settings are: a different beam count is a different translation.
    _, usage3 = translate_records(records[:1], backend="transformers", source="en", target="de",
                                  memory_dir=str(tmp_path), options={**options, "num_beams": 2})
    assert usage3["misses"] == 1


def test_model_option_is_required(tmp_path):
    from polyrefusal.errors import UserError
    with pytest.raises(UserError, match="needs option 'model'"):
        translate_records([{"id": "a", "text": "x"}], backend="transformers", source="en",
                          target="de", memory_dir=str(tmp_path))


@pytest.mark.gpu
def test_tiny_model_on_gpu(tiny_model, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    records = [{"id": f"r{i}", "text": f"hello world {i}"} for i in range(3)]
    options = {"model": str(tiny_model), "batch_size": 2, "max_new_tokens": 4}
    cpu, _ = translate_records(records, backend="transformers", source="en", target="de",
                               memory_dir=str(tmp_path / "cpu"), options={**options, "device": "cpu"})
    gpu, usage = translate_records(records, backend="transformers", source="en", target="de",
                                   memory_dir=str(tmp_path / "gpu"), options=options)  # default: cuda
    assert usage["requests"] == 2
    assert [r["text"] for r in gpu] == [r["text"] for r in cpu]  # greedy, float32: same tokens
