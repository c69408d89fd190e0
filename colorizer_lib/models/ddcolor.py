"""DDColor (Kang et al., ICCV 2023): a ConvNeXt encoder, a pixel decoder and a colour decoder.

Plain torch, parameterised like the original (github.com/piddnad/DDColor, Apache-2.0) so that one
class builds DDColor-T (ConvNeXt-T) and DDColor-L (ConvNeXt-L) with the released state-dict
layout (keys, shapes and order; ``tests/fixtures/ddcolor/ddcolor_manifest_{tiny,large}.json``):

========================== ====================================================================
``mean``, ``std``           ImageNet statistics (buffers); a 3-channel input is normalised with them
``encoder.arch``            :class:`~colorizer_lib.models.convnext.ConvNeXt`, features at strides
                            4, 8, 16, 32 (``norm0..norm3``)
``decoder.layers.{0,1,2}``  U-Net blocks, deepest first: pixel-shuffle x2 of the previous map,
                            concatenated with ``BN(skip)``, ReLU, 3x3 spectral-norm conv, ReLU, BN
``decoder.last_shuf``       pixel shuffle x4 back to the input resolution (the per-pixel embedding)
``decoder.color_decoder``   100 colour queries refined by 9 transformer layers (cross-attention to
                            the three U-Net maps in turn, self-attention, FFN; post-norm)
``refine_net.0.0``          1x1 spectral-norm conv on ``[query maps, normalised input]`` -> a, b
========================== ====================================================================

Input: ``(B, 3, S, S)`` grey RGB in [0, 1] (three equal channels rebuilt from Lab L; see
:mod:`colorizer_lib.models.ddcolor_pipeline`), S a multiple of 32. Output: ``(B, 2, S, S)``, CIE
Lab a and b (roughly -128..127).

The spectral-norm layers store ``weight_orig``/``weight_u``/``weight_v`` and use the stored vectors
in eval mode (:class:`~colorizer_lib.models.layers.SpectralNormConv`), so the model must be in
``eval()`` for inference (training mode runs a power iteration and BatchNorm batch statistics).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..color import IMAGENET_MEAN, IMAGENET_STD
from .architectures import register_architecture
from .convnext import CONVNEXT_L, CONVNEXT_T, ConvNeXt
from .deoldify import _UnetBlock
from .layers import PixelShuffleUp, SpectralNormConv, sn_conv_block

ENCODERS = {"convnext-t": CONVNEXT_T, "convnext-l": CONVNEXT_L}


class ImageEncoder(nn.Module):
    """Holds the ConvNeXt under ``arch`` (the original's key prefix ``encoder.arch``)."""

    def __init__(self, encoder_name: str, in_chans: int = 3):
        super().__init__()
        self.arch = ConvNeXt(ENCODERS[encoder_name], in_chans)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.arch(x)


class UnetBlockWide(_UnetBlock):
    """DDColor's decoder block: ``conv(ReLU([shuffle_x2(up_in), BN(skip)]))``, ``n_out`` channels out."""

    def __init__(self, up_in_c: int, x_in_c: int, n_out: int):
        super().__init__()
        self.shuf = PixelShuffleUp(up_in_c, n_out)
        self.bn = nn.BatchNorm2d(x_in_c)
        self.conv = sn_conv_block(n_out + x_in_c, n_out)
        self.relu = nn.ReLU()

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(self.merge(up_in, skip))


def sine_position_embedding(height: int, width: int, channels: int, *, device: torch.device | None = None,
                            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """DETR's normalised sine embedding of a ``height x width`` grid: ``(channels, height, width)``.

    The first half of the channels encodes the row, the second the column; within each half,
    frequency ``10000 ** (2 (i // 2) / half)`` and sine/cosine interleaved. Positions run 1..n and
    are scaled to ``(0, 2 pi]`` (with DETR's eps 1e-6). Computed in float32, as the original.
    """
    half = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    rows = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    cols = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    rows = rows / (rows[-1:] + eps) * scale
    cols = cols / (cols[-1:] + eps) * scale
    dim_t = torch.arange(half, dtype=torch.float32, device=device)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)

    def encode(pos: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, half), sin/cos interleaved
        p = pos[:, None] / dim_t
        return torch.stack((p[:, 0::2].sin(), p[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = encode(rows)[:, None, :].expand(height, width, half)
    pos_x = encode(cols)[None, :, :].expand(height, width, half)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1).to(dtype)


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (``in_proj_weight``,
    ``in_proj_bias``, ``out_proj``), batch-first tensors ``(B, L, C)``, no dropout, no masks."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        b, lq, c = query.shape
        lk = key.shape[1]
        d = c // self.heads
        q = F.linear(query, w_q, b_q).reshape(b, lq, self.heads, d).transpose(1, 2)
        k = F.linear(key, w_k, b_k).reshape(b, lk, self.heads, d).transpose(1, 2)
        v = F.linear(value, w_v, b_v).reshape(b, lk, self.heads, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, c))


class SelfAttentionLayer(nn.Module):
    """``norm(x + attn(q=k=x+query_pos, v=x))`` (post-norm, as DDColor's default ``pre_norm=False``)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = x + query_pos
        return self.norm(x + self.self_attn(q, q, x))


class CrossAttentionLayer(nn.Module):
    """``norm(x + attn(q=x+query_pos, k=memory+pos, v=memory))``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.multihead_attn = Attention(dim, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.multihead_attn(x + query_pos, memory + pos, memory))


class FFNLayer(nn.Module):
    """``norm(x + linear2(relu(linear1(x))))``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    """Linear layers with ReLU between them (``layers.{i}``)."""

    def __init__(self, dim: int, hidden: int, out: int, num_layers: int):
        super().__init__()
        sizes = [dim] + [hidden] * (num_layers - 1) + [out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MultiScaleColorDecoder(nn.Module):
    """Colour queries attending to the pixel decoder's maps; returns one map per query.

    ``forward(maps, pixel_embedding)``: ``maps`` are the three U-Net outputs (strides 16, 8, 4 of
    the input, channels ``in_channels``), ``pixel_embedding`` is ``(B, hidden_dim, S, S)``. Layer
    ``i`` cross-attends to ``maps[i % num_scales]``. Output ``(B, num_queries, S, S)``: the dot
    product of each query's colour embedding with every pixel's embedding.
    """

    def __init__(self, in_channels: tuple[int, ...], hidden_dim: int = 256, num_queries: int = 100, nheads: int = 8,
                 dim_feedforward: int = 2048, dec_layers: int = 9, color_embed_dim: int = 256, num_scales: int = 3):
        super().__init__()
        if len(in_channels) != num_scales:
            raise ValueError(f"need one input channel count per scale: {num_scales} scales, in_channels={in_channels}")
        self.hidden_dim, self.num_scales, self.num_layers = hidden_dim, num_scales, dec_layers
        # Registration order = the key order of ddcolor/model.py (the manifests' order).
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_scales, hidden_dim)
        self.input_proj = nn.ModuleList(nn.Conv2d(c, hidden_dim, kernel_size=1) for c in in_channels)
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, nheads) for _ in range(dec_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, nheads) for _ in range(dec_layers))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(hidden_dim, dim_feedforward) for _ in range(dec_layers))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.color_embed = MLP(hidden_dim, hidden_dim, color_embed_dim, 3)

    def forward(self, maps: list[torch.Tensor], pixel_embedding: torch.Tensor) -> torch.Tensor:
        if len(maps) != self.num_scales:
            raise ValueError(f"expected {self.num_scales} feature maps, got {len(maps)}")
        srcs, poss = [], []
        for i, feature in enumerate(maps):
            h, w = feature.shape[-2:]
            pos = sine_position_embedding(h, w, self.hidden_dim, device=feature.device, dtype=feature.dtype)
            poss.append(pos.flatten(1).t().unsqueeze(0))  # (1, HW, C)
            src = self.input_proj[i](feature).flatten(2) + self.level_embed.weight[i][None, :, None]
            srcs.append(src.transpose(1, 2))  # (B, HW, C)
        batch = pixel_embedding.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        out = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        for i in range(self.num_layers):
            level = i % self.num_scales
            out = self.transformer_cross_attention_layers[i](out, srcs[level], poss[level], query_pos)
            out = self.transformer_self_attention_layers[i](out, query_pos)
            out = self.transformer_ffn_layers[i](out)
        color_embed = self.color_embed(self.decoder_norm(out))  # (B, Q, C)
        return torch.einsum("bqc,bchw->bqhw", color_embed, pixel_embedding)


class DualDecoder(nn.Module):
    """The pixel decoder (``layers``, ``last_shuf``) and the colour decoder (the original's ``DuelDecoder``)."""

    def __init__(self, encoder_channels: tuple[int, ...], nf: int = 512, num_queries: int = 100, num_scales: int = 3,
                 dec_layers: int = 9):
        super().__init__()
        blocks, up_c = [], encoder_channels[-1]
        skips = encoder_channels[-2::-1]
        for i, skip_c in enumerate(skips):
            n_out = nf // 2 if i == len(skips) - 1 else nf
            blocks.append(UnetBlockWide(up_c, skip_c, n_out))
            up_c = n_out
        self.layers = nn.Sequential(*blocks)
        self.last_shuf = PixelShuffleUp(up_c, up_c, scale=4, bn=False)
        self.color_decoder = MultiScaleColorDecoder(
            tuple(block.conv[0].weight_orig.shape[0] for block in blocks), color_embed_dim=up_c,
            num_queries=num_queries, num_scales=num_scales, dec_layers=dec_layers)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        h, maps = features[-1], []
        for block, skip in zip(self.layers, features[-2::-1]):
            h = block(h, skip)
            maps.append(h)
        return self.color_decoder(maps, self.last_shuf(h))


class DDColor(nn.Module):
    """DDColor with the original's constructor arguments (those of a Hugging Face ``config.json``).

    Args:
        encoder_name: ``"convnext-t"`` (DDColor-T) or ``"convnext-l"`` (DDColor-L).
        decoder_name: only ``"MultiScaleColorDecoder"`` (every released checkpoint).
        num_input_channels: channels of the input (3).
        input_size: accepted for compatibility and ignored (the original sized layers by a probe
            forward at this size; the layout does not depend on it).
        nf: pixel-decoder width (512).
        num_output_channels: 2 (Lab a, b).
        last_norm: only ``"Spectral"`` (every released checkpoint).
        do_normalize: denormalise the output with the ImageNet statistics (False for every release).
        num_queries, num_scales, dec_layers: colour decoder size (100, 3, 9 for every release).
    """

    def __init__(self, encoder_name: str = "convnext-l", decoder_name: str = "MultiScaleColorDecoder",
                 num_input_channels: int = 3, input_size: Any = (512, 512), nf: int = 512,
                 num_output_channels: int = 2, last_norm: str = "Spectral", do_normalize: bool = False,
                 num_queries: int = 100, num_scales: int = 3, dec_layers: int = 9):
        super().__init__()
        if encoder_name not in ENCODERS:
            raise ValueError(f"encoder_name must be one of {sorted(ENCODERS)}, got {encoder_name!r}")
        if decoder_name != "MultiScaleColorDecoder":
            raise ValueError(f"only decoder_name='MultiScaleColorDecoder' is implemented (every released "
                             f"DDColor checkpoint uses it), got {decoder_name!r}")
        if last_norm != "Spectral":
            raise ValueError(f"only last_norm='Spectral' is implemented (every released DDColor checkpoint "
                             f"uses it), got {last_norm!r}")
        if num_scales != 3:
            raise ValueError(f"num_scales must be 3 (the pixel decoder has three blocks), got {num_scales}")
        self.config = {"encoder_name": encoder_name, "decoder_name": decoder_name,
                       "num_input_channels": num_input_channels, "nf": nf,
                       "num_output_channels": num_output_channels, "last_norm": last_norm,
                       "do_normalize": do_normalize, "num_queries": num_queries, "num_scales": num_scales,
                       "dec_layers": dec_layers}
        self.do_normalize = do_normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.encoder = ImageEncoder(encoder_name, num_input_channels)
        self.decoder = DualDecoder(self.encoder.arch.feature_channels, nf=nf, num_queries=num_queries,
                                   num_scales=num_scales, dec_layers=dec_layers)
        self.refine_net = nn.Sequential(nn.Sequential(
            SpectralNormConv(num_queries + num_input_channels, num_output_channels, 1, bias=True)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` grey RGB in [0, 1] -> ``(B, 2, S, S)`` Lab a, b; S a multiple of 32."""
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"DDColor needs input sides that are multiples of 32, got {tuple(x.shape[-2:])}; "
                             f"use a render factor that is even (input = 16 x render factor).")
        if x.shape[1] == 3:
            x = (x - self.mean) / self.std
        out = self.refine_net(torch.cat([self.decoder(self.encoder(x)), x], dim=1))
        if self.do_normalize:
            out = out * self.std + self.mean
        return out


@register_architecture("ddcolor-large")
def ddcolor_large() -> DDColor:
    """DDColor-L: ConvNeXt-L encoder (227.9 M parameters), the released ``ddcolor_*`` L checkpoints."""
    return DDColor("convnext-l")


@register_architecture("ddcolor-tiny")
def ddcolor_tiny() -> DDColor:
    """DDColor-T: ConvNeXt-T encoder (55.0 M parameters), ``ddcolor_paper_tiny``."""
    return DDColor("convnext-t")


__all__ = ["DDColor", "DualDecoder", "MultiScaleColorDecoder", "ddcolor_large", "ddcolor_tiny",
           "sine_position_embedding"]
