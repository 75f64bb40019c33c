"""A complete ConsistI2V folder in the released diffusers layout, tiny and with random weights.

Same component classes and file names as ``TIGER-Lab/ConsistI2V`` (unet/ vae/ text_encoder/ tokenizer/
scheduler/), small enough to sample on a CPU in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import string
from pathlib import Path

import torch
from safetensors.torch import save_file

from i2vbench.consisti2v import ConsistI2VUNet, UNetConfig

TINY_UNET = UNetConfig(block_out_channels=(32, 32, 32, 32), attention_head_dim=(2, 4, 8, 16),
                       cross_attention_dim=32, norm_num_groups=16, sample_size=32)


def write_unet(folder: Path, config: UNetConfig = TINY_UNET, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    unet = ConsistI2VUNet(config)
    with torch.no_grad():  # make the temporal layers and the stride embedding do something
        for name, p in unet.named_parameters():
            if name.endswith(".alpha"):
                p.fill_(0.5)
            elif "frame_stride_embedding.linear_2" in name:
                p.normal_(0, 0.02)
    data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items() if k != "extra"}
    (folder / "config.json").write_text(json.dumps({"_class_name": "VideoLDMUNet3DConditionModel", **data}))
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, folder / "diffusion_pytorch_model.safetensors")


def write_tokenizer(folder: Path) -> None:
    """A character-level CLIP BPE vocabulary: every lower-case letter, with and without end-of-word."""
    from transformers import CLIPTokenizer

    tokens = ["!", "<|startoftext|>", "<|endoftext|>"] + list(string.ascii_lowercase) + [c + "</w>" for c in string.ascii_lowercase]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], pad_token="!", model_max_length=77)
    tok.save_pretrained(folder)


def write_pipeline(root: Path, seed: int = 0) -> Path:
    """Write the tiny folder and return it."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel

    write_unet(root / "unet", seed=seed)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(block_out_channels=(16, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8, latent_channels=4, sample_size=64)
    vae.save_pretrained(root / "vae", safe_serialization=True)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=55, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
                                        bos_token_id=1, eos_token_id=2, pad_token_id=0))
    text.save_pretrained(root / "text_encoder", safe_serialization=True)
    write_tokenizer(root / "tokenizer")
    (root / "scheduler").mkdir(exist_ok=True)
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps({
        "_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "linear",
        "steps_offset": 1, "timestep_spacing": "leading", "prediction_type": "epsilon", "clip_sample": False}))
    return root
