"""OpenLM's forward pass in plain PyTorch, written from open_lm/model.py's rules with its parameter
names, as the reference our import must reproduce: gain-only LayerNorms (eps 1e-5), q/k/v from one
``in_proj``, qk-norm over all heads before the head split, rotate-half rotary (or the old
``head_rotary`` layout, which indexes the angle table by head), SwiGLU via ``w12``/``w3``, untied head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GainNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Rotary(nn.Module):
    """Angles from the table row of axis 1 of what it rotates: positions for (B, L, H, K) inputs;
    with ``head_rotary`` the inputs are transposed to (B, H, L, K) first, so heads index the table."""

    def __init__(self, head_dim: int, head_rotary: bool):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)))
        self.head_rotary = head_rotary

    def rotate(self, x):
        t = torch.arange(x.shape[1], dtype=torch.float32)
        emb = torch.cat([torch.outer(t, self.inv_freq)] * 2, dim=-1)
        return x * emb.cos()[None, :, None, :] + rotate_half(x) * emb.sin()[None, :, None, :]

    def forward(self, x):
        if self.head_rotary:
            return self.rotate(x.transpose(1, 2)).transpose(1, 2)
        return self.rotate(x)


class Attention(nn.Module):
    def __init__(self, d: int, n_heads: int, head_rotary: bool):
        super().__init__()
        self.n_heads = n_heads
        self.in_proj = nn.Linear(d, 3 * d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)
        self.pos_embed = Rotary(d // n_heads, head_rotary)
        self.q_norm, self.k_norm = GainNorm(d), GainNorm(d)

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.view(B, L, self.n_heads, D // self.n_heads) for t in (q, k, v))
        q, k = self.pos_embed(q), self.pos_embed(k)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.out_proj(o.transpose(1, 2).reshape(B, L, D))


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(d, 2 * hidden, bias=False)
        self.w3 = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        gate, up = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, head_rotary: bool):
        super().__init__()
        self.attention = Attention(d, n_heads, head_rotary)
        self.feed_forward = SwiGLU(d, 256 * ((int(2 * 4 * d / 3) + 256 - 1) // 256))  # OpenLM's sizing
        self.attention_norm, self.ffn_norm = GainNorm(d), GainNorm(d)

    def forward(self, x):
        h = x + self.attention(self.attention_norm(x))
        return h + self.feed_forward(self.ffn_norm(h))


class OpenLMReference(nn.Module):
    def __init__(self, d: int, n_layers: int, n_heads: int, vocab: int, head_rotary: bool = False, seed: int = 0):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Block(d, n_heads, head_rotary) for _ in range(n_layers)])
        self.norm = GainNorm(d)
        self.output = nn.Linear(d, vocab, bias=False)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # random weights, gains away from 1 so a misplaced gain shows
            for p in self.parameters():
                if p.ndim == 1:
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)

    @torch.no_grad()
    def forward(self, tokens_BxL):
        x = self.tok_embeddings(tokens_BxL)
        for layer in self.layers:
            x = layer(x)
        return self.output(self.norm(x)).float()
