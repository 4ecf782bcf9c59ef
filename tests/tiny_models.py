"""Tiny random-weight models saved to tmp folders: real code paths, no downloads.

Each builder writes a folder that loads with the model's own ``from_pretrained`` (the way
a user's local folder or a Hugging Face snapshot does) and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# --- depth: Depth Anything ------------------------------------------------------------------

TINY_DEPTH_INPUT_SIDE = 70  # the processor's target short side: 5 patches of 14 pixels


def build_tiny_depth_anything(path: Path, *, seed: int = 0) -> Path:
    """A Depth Anything model (tiny DINOv2 backbone + DPT head) and its image processor.

    The processor keeps the real model's rules (keep aspect ratio, multiple of 14, bicubic,
    ImageNet mean/std) with a small target size so a forward pass takes milliseconds.
    """
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessorPil,
    )

    torch.manual_seed(seed)
    backbone_args: dict[str, Any] = {  # dict: transformers' stubs hide out_indices
        "image_size": 28,
        "patch_size": 14,
        "hidden_size": 16,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "mlp_ratio": 2,
        "out_indices": [1, 2, 3, 4],
        "reshape_hidden_states": False,
        "apply_layernorm": True,
    }
    backbone = Dinov2Config(**backbone_args)
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=16,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=[4, 8, 8, 16],
        fusion_hidden_size=8,
        head_hidden_size=4,
        depth_estimation_type="relative",
    )
    model = DepthAnythingForDepthEstimation(config).eval()
    with torch.no_grad():
        # The library's init (std 0.02, zero biases) makes a random tiny network's output
        # constant; PyTorch's default conv init keeps the input visible in the output, and a
        # positive last bias keeps the final ReLU from zeroing it.
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                module.reset_parameters()
        model.head.conv3.bias.fill_(1.0)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor = DPTImageProcessorPil(
        do_resize=True,
        size={"height": TINY_DEPTH_INPUT_SIDE, "width": TINY_DEPTH_INPUT_SIDE},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,  # bicubic, as in the released Depth Anything processors
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_pad=False,
    )
    processor.save_pretrained(path)
    return path


def install_in_hub_cache(
    folder: Path,
    *,
    repo_id: str,
    cache_dir: Path,
    commit: str = "0123456789abcdef0123456789abcdef01234567",
    files: list[str] | None = None,
) -> Path:
    """Lay ``folder``'s files out as ``snapshot_download`` would have: blobs, a snapshot of
    relative symlinks, ``refs/main``. ``files`` (relative paths) limits what is installed.
    Returns the snapshot folder."""
    import hashlib
    import os

    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    names = (
        files
        if files is not None
        else [str(p.relative_to(folder)) for p in sorted(folder.rglob("*")) if p.is_file()]
    )
    for name in names:
        data = (folder / name).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


# --- painterly: Stable Diffusion 1.5 img2img, depth ControlNet, LCM-LoRA, TAESD -------------
# The configs follow diffusers' own get_dummy_components() for these pipelines. The tiny
# UNet's sample_size × the tiny VAE's scale factor (2) = TINY_SD_NATIVE_SIDE, the short
# side the painterly stage diffuses at with these models.

TINY_SD_NATIVE_SIDE = 32


def _tiny_unet_config() -> dict[str, object]:
    return {
        "block_out_channels": (32, 64),
        "layers_per_block": 2,
        "sample_size": TINY_SD_NATIVE_SIDE // 2,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 32,
    }


def make_clip_tokenizer(*, merges: tuple[str, ...] = ()) -> Any:
    """A byte-level BPE CLIP tokenizer with a synthetic vocabulary (no download).

    The vocabulary holds the 256 byte symbols, their end-of-word forms, the special tokens
    and one entry per merge: every text tokenizes, into short ids. ``merges`` are words to
    build merges for, so common words become one token.
    """
    from transformers import CLIPTokenizer

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    extra = [b for b in range(256) if b not in printable]
    symbols = [chr(c) for c in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    merge_pairs: list[tuple[str, str]] = []
    for word in merges:
        current = word[0]
        for i, ch in enumerate(word[1:], start=1):
            nxt = ch + "</w>" if i == len(word) - 1 else ch
            merge_pairs.append((current, nxt))
            current += nxt
            vocab.setdefault(current, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merge_pairs, model_max_length=77)


def _tiny_vae_and_text_encoder() -> tuple[Any, Any]:
    """The small VAE and CLIP text encoder diffusers' own tests use (random weights)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            pad_token_id=1,
            vocab_size=1000,
        )
    )
    return vae, text_encoder


def _sd15_scheduler() -> Any:
    """The released SD 1.5 (and SD inpainting) scheduler config."""
    from diffusers import PNDMScheduler

    return PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )


def build_tiny_sd15(path: Path, *, seed: int = 0) -> Path:
    """A Stable Diffusion 1.5-shaped pipeline folder (model_index.json + components)."""
    import torch
    from diffusers import (
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**_tiny_unet_config())
    vae, text_encoder = _tiny_vae_and_text_encoder()
    tokenizer = make_clip_tokenizer(merges=("oil", "painting"))
    scheduler = _sd15_scheduler()
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return path


def build_tiny_controlnet(path: Path, *, seed: int = 0) -> Path:
    """A depth-ControlNet folder that fits :func:`build_tiny_sd15`'s UNet and VAE."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    cfg = _tiny_unet_config()
    controlnet = ControlNetModel(
        block_out_channels=cfg["block_out_channels"],
        layers_per_block=2,
        in_channels=4,
        down_block_types=cfg["down_block_types"],
        cross_attention_dim=32,
        # One stride-2 stage: the control image is embedded at the tiny VAE's scale (2).
        conditioning_embedding_out_channels=(16, 32),
    )
    # A trained ControlNet's zero convolutions are not zero; random ones make the control
    # image visible in the output, as it is with real weights.
    with torch.no_grad():
        for module in [
            *controlnet.controlnet_down_blocks,
            controlnet.controlnet_mid_block,
            controlnet.controlnet_cond_embedding.conv_out,
        ]:
            module.weight.normal_(0.0, 0.05)
    controlnet.save_pretrained(path)
    return path


def build_tiny_lcm_lora(path: Path, *, seed: int = 0, rank: int = 4) -> Path:
    """An LCM-LoRA-shaped adapter (``pytorch_lora_weights.safetensors``) for the tiny UNet.

    The layers come from peft (``get_peft_model_state_dict`` of the tiny UNet with a LoRA
    on the modules the real LCM-LoRA adapts); they are saved with kohya-style keys
    (``lora_unet_<module>.lora_down.weight``, ``.alpha``), the format of the released
    ``latent-consistency/lcm-lora-sdv1-5`` file, which diffusers converts on load. The
    weights are random (non-zero B), so the adapter visibly changes the UNet's output.
    """
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**_tiny_unet_config())
    targets = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out"]
    targets += ["ff.net.0.proj", "ff.net.2", "conv1", "conv2", "time_emb_proj"]
    unet.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=targets)
    )
    tensors: dict[str, torch.Tensor] = {}
    for key, value in get_peft_model_state_dict(unet).items():
        module, kind = key.rsplit(".lora_", 1)  # "down_blocks.0….conv1", "A.weight"
        name = "lora_unet_" + module.replace(".", "_")
        tensors[f"{name}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = (
            value.contiguous()
        )
        tensors[f"{name}.alpha"] = torch.tensor(float(rank))
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "pytorch_lora_weights.safetensors"))
    return path


def build_tiny_taesd(path: Path, *, seed: int = 0) -> Path:
    """A tiny AutoencoderTiny (TAESD) folder with the tiny VAE's scale factor (2)."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    channels = (32, 32)
    AutoencoderTiny(
        in_channels=3,
        out_channels=3,
        encoder_block_out_channels=channels,
        decoder_block_out_channels=channels,
        num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1),
        latent_channels=4,
    ).save_pretrained(path)
    return path


# --- fill: Stable Diffusion inpainting -------------------------------------------------------
# diffusers' own get_dummy_components() for StableDiffusionInpaintPipeline: a 9-channel UNet
# (4 latent + 1 mask + 4 masked-image latent channels), sample_size 32 × the tiny VAE's
# scale factor (2) = TINY_INPAINT_NATIVE_SIDE, the side the fill diffuses at.

TINY_INPAINT_NATIVE_SIDE = 64


def build_tiny_sd_inpaint(path: Path, *, seed: int = 0) -> Path:
    """A ``StableDiffusionInpaintPipeline`` folder (model_index.json + components)."""
    import torch
    from diffusers import (
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **{**_tiny_unet_config(), "in_channels": 9, "sample_size": TINY_INPAINT_NATIVE_SIDE // 2}
    )
    vae, text_encoder = _tiny_vae_and_text_encoder()
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=make_clip_tokenizer(merges=("background",)),
        unet=unet,
        scheduler=_sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return path
