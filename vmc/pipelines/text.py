"""T5 prompt embeddings as the DeepFloyd-IF-style Show-1 stages expect them, computed once and shared.

Like the official `encode_prompt` (clean_caption off): lower-cased and stripped text, padded to 77 tokens,
encoded with the attention mask. The official cascade encodes the negative prompt as "" for the keyframe,
interpolation and pixel-SR stages ("low resolution, blur" only reaches the latent SR stage).
"""

from __future__ import annotations

import torch


class T5PromptEncoder:
    max_length = 77

    def __init__(self, tokenizer, text_encoder, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder.eval().requires_grad_(False)
        self.device = torch.device(device)
        self.dtype = dtype
        self._cache: dict[str, torch.Tensor] = {}

    @staticmethod
    def preprocess(text: str) -> str:
        return text.lower().strip()

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        """(len(prompts), 77, hidden) embeddings; each distinct prompt is encoded once per encoder."""
        todo = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if todo:
            tokens = self.tokenizer([self.preprocess(p) for p in todo], padding="max_length",
                                    max_length=self.max_length, truncation=True, add_special_tokens=True,
                                    return_attention_mask=True, return_tensors="pt")
            self.text_encoder.to(self.device)
            out = self.text_encoder(tokens.input_ids.to(self.device),
                                    attention_mask=tokens.attention_mask.to(self.device))[0]
            for p, e in zip(todo, out):
                self._cache[p] = e.to(self.dtype) if self.dtype else e
        return torch.stack([self._cache[p] for p in prompts])

    def release(self):
        """Drop the text encoder (training and sampling need only the cached embeddings)."""
        self.text_encoder = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def word_tokenizer(words):
    """A T5-style tokenizer (pad 0, </s> 1, unk 2, </s> appended) over a closed word vocabulary: the text side of
    small domain models (the shapes world, the tiny test cascade), saved and loaded like any hub tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(dict.fromkeys(words))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=T5PromptEncoder.max_length)
