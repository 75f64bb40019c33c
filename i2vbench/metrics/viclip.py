"""ViCLIP ViT-L/14 (InternVid, Wang et al. 2023): a CLIP whose image tower sees all frames of a clip at once.

Written from the public architecture (``OpenGVLab/InternVideo`` ``Data/InternVid/viclip/viclip_vision.py`` and
``viclip_text.py``, vendored by VBench as ``vbench/third_party/ViCLIP``) so that the released checkpoint
``ViClip-InternVid-10M-FLT.pth`` (its ``"model"`` entry) loads by key with ``strict=True``:

- ``vision_encoder``: a Conv3d patch embedding with temporal kernel 1, a CLIP position embedding per patch plus a
  learned ``temporal_positional_embedding`` per frame; the class token and the patch tokens of *all* frames form
  one sequence (1 + T x 256 tokens) through a 24-layer ViT-L; the class token after ``ln_post`` is projected to 768.
- ``text_encoder``: the CLIP ViT-L/14 text transformer (width 768, 12 layers) with a 32-token context.
- ``temp``: the contrastive temperature (unused at inference).

The transformer blocks are open_clip's (``ln_1``, ``attn`` = ``nn.MultiheadAttention``, ``ln_2``, ``mlp.c_fc``,
``mlp.c_proj``, QuickGELU), whose parameter names are those of the original. This module knows nothing of the
toolkit: it takes tensors and returns embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ViCLIPConfig:
    """Sizes of a ViCLIP; the defaults are ViCLIP-L/14 as released (InternVid-10M-FLT)."""

    image_size: int = 224
    patch_size: int = 14
    num_frames: int = 8
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    embed_dim: int = 768
    context_length: int = 32
    vocab_size: int = 49408
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12


def _transformer(width: int, layers: int, heads: int) -> nn.Module:
    from open_clip.transformer import QuickGELU, Transformer

    return Transformer(width, layers, heads, act_layer=QuickGELU)


class ViCLIPVision(nn.Module):
    """The video tower: ``[B, T, 3, H, W]`` normalised frames -> ``[B, embed_dim]`` (not normalised)."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        width, grid = cfg.vision_width, cfg.image_size // cfg.patch_size
        self.conv1 = nn.Conv3d(3, width, (1, cfg.patch_size, cfg.patch_size), (1, cfg.patch_size, cfg.patch_size),
                               bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _transformer(width, cfg.vision_layers, cfg.vision_heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, cfg.embed_dim))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        x = self.conv1(video.transpose(1, 2))  # [B, W, T, g, g]
        x = x.flatten(3).permute(0, 2, 3, 1)  # [B, T, N, W]
        x = x + self.positional_embedding[1:].to(x.dtype)
        temporal = self.temporal_positional_embedding
        # one frame: the mean temporal embedding (the original's image path); otherwise one per frame
        x = x + (temporal.mean(1) if t == 1 else temporal[0, :t]).to(x.dtype)[:, None]
        x = x.transpose(1, 2).reshape(b, -1, x.shape[-1])  # patch-major, frame-minor, as the original
        cls = (self.class_embedding + self.positional_embedding[0]).to(x.dtype).expand(b, 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1))
        x = self.ln_post(self.transformer(x)[:, 0])
        return x @ self.proj.to(x.dtype)


class ViCLIPText(nn.Module):
    """The text tower: ``[B, context_length]`` BPE token ids -> ``[B, embed_dim]`` at the end-of-text token."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        self.context_length = cfg.context_length
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.text_width).normal_(std=0.01))
        self.transformer = _transformer(cfg.text_width, cfg.text_layers, cfg.text_heads)
        self.ln_final = nn.LayerNorm(cfg.text_width)
        projection = torch.empty(cfg.text_width, cfg.embed_dim).normal_(std=cfg.text_width**-0.5)
        self.text_projection = nn.Parameter(projection)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:n].to(self.token_embedding.weight.dtype)
        causal = torch.full((n, n), float("-inf"), device=x.device).triu_(1)
        x = self.ln_final(self.transformer(x, attn_mask=causal))
        # the end-of-text token has the largest id of the vocabulary
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)] @ self.text_projection.to(x.dtype)


class ViCLIP(nn.Module):
    """Video and text towers; the checkpoint's top-level keys are ``vision_encoder.*``, ``text_encoder.*``, ``temp``."""

    def __init__(self, cfg: ViCLIPConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or ViCLIPConfig()
        self.vision_encoder = ViCLIPVision(self.config)
        self.text_encoder = ViCLIPText(self.config)
        self.temp = nn.Parameter(torch.tensor(1 / 100.0))

    def encode_vision(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` CLIP-normalised frames -> ``[B, embed_dim]``."""
        return self.vision_encoder(video)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, context_length]`` token ids -> ``[B, embed_dim]``."""
        return self.text_encoder(tokens)


def viclip_weights(checkpoint: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's tensors of a ViCLIP checkpoint: the released file holds them under ``"model"``."""
    state = checkpoint.get("model", checkpoint)
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_viclip(checkpoint: dict[str, torch.Tensor], cfg: ViCLIPConfig | None = None) -> ViCLIP:
    """ViCLIP with the checkpoint's weights (strict by key and shape), in fp32, eval mode, on the CPU.

    Built on the meta device and filled by assignment, so the 430M parameters are never initialised twice."""
    with torch.device("meta"):
        model = ViCLIP(cfg)
    model.load_state_dict(viclip_weights(checkpoint), strict=True, assign=True)
    return model.float().eval()
