"""T5 prompt encoding: official preprocessing (lower-case, strip, 77 tokens, attention mask), cached."""

import torch
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from vmc.pipelines import T5PromptEncoder


def _tiny_t5(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in "a red circle is moving to the right blue square".split():
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(tmp_path / "tokenizer")
    torch.manual_seed(0)
    enc = T5EncoderModel(T5Config(vocab_size=len(vocab), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2))
    enc.save_pretrained(tmp_path / "text_encoder")
    return PreTrainedTokenizerFast.from_pretrained(tmp_path / "tokenizer"), T5EncoderModel.from_pretrained(
        tmp_path / "text_encoder")


def test_encoding_matches_the_official_preprocessing(tmp_path):
    tokenizer, encoder = _tiny_t5(tmp_path)
    enc = T5PromptEncoder(tokenizer, encoder)
    out = enc.encode(["  A Red Circle is moving ", "a blue square"])
    assert out.shape == (2, 77, 16)
    tokens = tokenizer(["a red circle is moving"], padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        direct = encoder(tokens.input_ids, attention_mask=tokens.attention_mask)[0][0]
    torch.testing.assert_close(out[0], direct)
    enc.release()  # cached prompts still work without the encoder
    torch.testing.assert_close(enc.encode(["a blue square", "  A Red Circle is moving "]), out.flip(0))
