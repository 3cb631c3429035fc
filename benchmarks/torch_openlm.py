"""The OpenLM architecture in PyTorch, written only as the reference for bench_model.py.

Same maths as scaling_jax/model/transformer.py: gain-only LayerNorms, qk-norm over all heads,
rotary (rotate-half), causal SDPA, SwiGLU, untied head, CE + 1e-4·log²Z in float32.
Run: python torch_openlm.py '{"d_model":..., "n_layers":..., "n_heads":..., "vocab_size":...,
"ffn_dim":..., "batch":..., "seq":..., "steps":..., "warmup":..., "threads":...}'
and it prints one JSON line with the best seconds per forward+backward step.
"""

import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def rotary(x, cos, sin):
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


class Block(nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h, self.k = h, d // h
        self.attn_norm = nn.LayerNorm(d, bias=False)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.q_norm = nn.LayerNorm(d, bias=False)
        self.k_norm = nn.LayerNorm(d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.ffn_norm = nn.LayerNorm(d, bias=False)
        self.w12 = nn.Linear(d, 2 * f, bias=False)
        self.w3 = nn.Linear(f, d, bias=False)

    def forward(self, x, cos, sin):
        B, L, D = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.view(B, L, self.h, self.k) for t in (q, k, v))
        q, k = rotary(q, cos, sin), rotary(k, cos, sin)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.out(o.transpose(1, 2).reshape(B, L, D))
        gate, up = self.w12(self.ffn_norm(x)).chunk(2, dim=-1)
        return x + self.w3(F.silu(gate) * up)


class Transformer(nn.Module):
    def __init__(self, d, n_layers, h, vocab, f, theta=10000.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([Block(d, h, f) for _ in range(n_layers)])
        self.final_norm = nn.LayerNorm(d, bias=False)
        self.head = nn.Linear(d, vocab, bias=False)
        k = d // h
        self.inv_freq = theta ** (-torch.arange(0, k, 2, dtype=torch.float32) / k)

    def forward(self, tokens):
        L = tokens.shape[1]
        angle = torch.arange(L, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        cos, sin = angle.cos()[:, None, :], angle.sin()[:, None, :]
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.head(self.final_norm(x)).float()


def lm_loss(model, tokens, targets, z_loss_weight=1e-4):
    logits = model(tokens)
    lse = torch.logsumexp(logits, dim=-1)
    ce = lse - logits.gather(-1, targets[..., None])[..., 0]
    return ce.mean() + z_loss_weight * (lse**2).mean()


def main():
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    torch.manual_seed(0)
    model = Transformer(a["d_model"], a["n_layers"], a["n_heads"], a["vocab_size"], a["ffn_dim"])
    tokens = torch.randint(0, a["vocab_size"], (a["batch"], a["seq"] + 1))

    def step():
        model.zero_grad(set_to_none=True)
        lm_loss(model, tokens[:, :-1], tokens[:, 1:]).backward()

    for _ in range(a["warmup"]):
        step()
    times = []
    for _ in range(a["steps"]):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"seconds": min(times), "median": sorted(times)[len(times) // 2],
                      "params": n_params, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
