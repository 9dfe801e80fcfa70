#!/usr/bin/env python3
"""Golden fixtures for tests/test_golden.cpp: a tiny Llama-style decoder with ProRes, in plain PyTorch.

The model is written from scratch here (no Hugging Face transformers) and computed in float64 on the CPU,
following docs/prores.md: RMSNorm (optionally with LayerNorm Scaling 1/sqrt(l)), GQA attention with
Hugging Face Llama's rotate-half RoPE, SwiGLU MLP, untied LM head, mean cross-entropy, and one residual
scale alpha per block applied according to the norm placement (pre, post, sandwich, deepnorm).

For each fixture it records the parameters, the logits, the loss, the gradient of the mean loss with
respect to every parameter, and five AdamW steps (weight decay on linear weights only, gradient clipping
to norm 1) on the same batch, so that the C++ test needs neither PyTorch nor Python.

Regenerate (writes tests/fixtures/golden_*.h5, deterministic for a given PyTorch version):
    python3 tests/golden/make_golden.py
Add --check to also compare the autograd gradients against central finite differences (float64).
Needs: torch (CPU), numpy, h5py.
"""
import argparse
import math
import pathlib

import h5py
import numpy as np
import torch
import torch.nn.functional as F

DTYPE = torch.float64

CONFIG = dict(
    num_layers=2,
    hidden_size=16,
    ffn_hidden_size=24,
    num_attention_heads=4,
    num_query_groups=2,
    seq_length=8,
    vocab_size=32,
    batch_size=2,
)
ROTARY_BASE = 10000.0
NORM_EPS = 1e-5
ALPHA = [0.3, 0.7]
ADAM = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip_grad=1.0)
ADAM_STEPS = 5

# (file stem, norm placement, LayerNorm Scaling, seed)
FIXTURES = [
    ("golden_pre", "pre", False, 101),
    ("golden_post", "post", False, 102),
    ("golden_sandwich", "sandwich", False, 103),
    ("golden_deepnorm", "deepnorm", False, 104),
    ("golden_pre_lns", "pre", True, 105),
]

LINEAR_SUFFIXES = (
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
)


def param_shapes(placement):
    """Parameter names (Hugging Face Llama) and shapes in (out, in) layout, in the C++ ParamTable order."""
    L, C, F_ = CONFIG["num_layers"], CONFIG["hidden_size"], CONFIG["ffn_hidden_size"]
    NH, KV, V = CONFIG["num_attention_heads"], CONFIG["num_query_groups"], CONFIG["vocab_size"]
    HS = C // NH
    shapes = {"model.embed_tokens.weight": (V, C)}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (C,)
        shapes[p + "self_attn.q_proj.weight"] = (NH * HS, C)
        shapes[p + "self_attn.k_proj.weight"] = (KV * HS, C)
        shapes[p + "self_attn.v_proj.weight"] = (KV * HS, C)
        shapes[p + "self_attn.o_proj.weight"] = (C, NH * HS)
        if placement == "sandwich":
            shapes[p + "attn_out_layernorm.weight"] = (C,)
        shapes[p + "post_attention_layernorm.weight"] = (C,)
        shapes[p + "mlp.gate_proj.weight"] = (F_, C)
        shapes[p + "mlp.up_proj.weight"] = (F_, C)
        shapes[p + "mlp.down_proj.weight"] = (C, F_)
        if placement == "sandwich":
            shapes[p + "mlp_out_layernorm.weight"] = (C,)
    shapes["model.norm.weight"] = (C,)
    shapes["lm_head.weight"] = (V, C)
    return shapes


def is_decayed(name):
    return name == "lm_head.weight" or name.endswith(LINEAR_SUFFIXES)


def init_params(placement, gen):
    """Random parameters: embedding N(0,1), linear weights N(0,0.2), norm gains 1 + N(0,0.1)."""
    params = {}
    for name, shape in param_shapes(placement).items():
        w = torch.randn(shape, generator=gen, dtype=DTYPE)
        if name == "model.embed_tokens.weight":
            pass
        elif len(shape) == 1:
            w = 1.0 + 0.1 * w
        else:
            w = 0.2 * w
        params[name] = w.requires_grad_(True)
    return params


def rms_norm(x, w, scale):
    return scale * w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS)


def rope_tables(T, HS):
    inv_freq = ROTARY_BASE ** (-torch.arange(0, HS, 2, dtype=DTYPE) / HS)
    angle = torch.outer(torch.arange(T, dtype=DTYPE), inv_freq)
    emb = torch.cat([angle, angle], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def attention(x, p, prefix):
    B, T, C = x.shape
    NH, KV = CONFIG["num_attention_heads"], CONFIG["num_query_groups"]
    HS = C // NH
    q = (x @ p[prefix + "self_attn.q_proj.weight"].T).view(B, T, NH, HS).transpose(1, 2)
    k = (x @ p[prefix + "self_attn.k_proj.weight"].T).view(B, T, KV, HS).transpose(1, 2)
    v = (x @ p[prefix + "self_attn.v_proj.weight"].T).view(B, T, KV, HS).transpose(1, 2)
    cos, sin = rope_tables(T, HS)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    group = NH // KV
    k = k.repeat_interleave(group, dim=1)  # head h reads kv group h // group
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    out = scores.softmax(dim=-1) @ v
    out = out.transpose(1, 2).reshape(B, T, NH * HS)
    return out @ p[prefix + "self_attn.o_proj.weight"].T


def mlp(x, p, prefix):
    gate = x @ p[prefix + "mlp.gate_proj.weight"].T
    up = x @ p[prefix + "mlp.up_proj.weight"].T
    return (F.silu(gate) * up) @ p[prefix + "mlp.down_proj.weight"].T


def block(x, p, i, placement, lns, alpha):
    prefix = f"model.layers.{i}."
    l = i + 1
    s = 1.0 / math.sqrt(l) if lns else 1.0

    def norm(name, t):
        return rms_norm(t, p[prefix + name + ".weight"], s)

    if placement == "pre":
        h = x + alpha * attention(norm("input_layernorm", x), p, prefix)
        return h + alpha * mlp(norm("post_attention_layernorm", h), p, prefix)
    if placement == "post":
        h = norm("input_layernorm", x + alpha * attention(x, p, prefix))
        return norm("post_attention_layernorm", h + alpha * mlp(h, p, prefix))
    if placement == "sandwich":
        h = x + alpha * norm("attn_out_layernorm", attention(norm("input_layernorm", x), p, prefix))
        return h + alpha * norm("mlp_out_layernorm", mlp(norm("post_attention_layernorm", h), p, prefix))
    if placement == "deepnorm":
        c = (2 * CONFIG["num_layers"]) ** 0.25
        h = norm("input_layernorm", c * x + alpha * attention(x, p, prefix))
        return norm("post_attention_layernorm", c * h + alpha * mlp(h, p, prefix))
    raise ValueError(f"unknown norm placement {placement}")


def forward(p, tokens, targets, placement, lns):
    """Returns (logits (B,T,V), mean cross-entropy loss)."""
    x = p["model.embed_tokens.weight"][tokens]
    for i in range(CONFIG["num_layers"]):
        x = block(x, p, i, placement, lns, ALPHA[i])
    x = rms_norm(x, p["model.norm.weight"], 1.0)
    logits = x @ p["lm_head.weight"].T
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return logits, loss


def finite_difference_check(p, tokens, targets, placement, lns, gen, samples=6, h=1e-6):
    """Central differences at a few random elements of every parameter against autograd."""
    for w in p.values():
        w.grad = None
    _, loss = forward(p, tokens, targets, placement, lns)
    loss.backward()
    worst = 0.0
    with torch.no_grad():
        for name, w in p.items():
            flat, gflat = w.view(-1), w.grad.view(-1)
            for idx in torch.randint(0, flat.numel(), (samples,), generator=gen).tolist():
                saved = flat[idx].item()
                flat[idx] = saved + h
                fp = forward(p, tokens, targets, placement, lns)[1].item()
                flat[idx] = saved - h
                fm = forward(p, tokens, targets, placement, lns)[1].item()
                flat[idx] = saved
                numeric = (fp - fm) / (2 * h)
                err = abs(numeric - gflat[idx].item())
                if err > 1e-8 + 1e-6 * abs(numeric):
                    raise AssertionError(f"{name}[{idx}]: autograd {gflat[idx].item()} numeric {numeric}")
                worst = max(worst, err)
    for w in p.values():
        w.grad = None
    return worst


def adam_run(p, tokens, targets, placement, lns):
    """ADAM_STEPS AdamW steps on the same batch; returns the loss before each step."""
    decay = [w for n, w in p.items() if is_decayed(n)]
    no_decay = [w for n, w in p.items() if not is_decayed(n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": ADAM["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=ADAM["lr"],
        betas=(ADAM["beta1"], ADAM["beta2"]),
        eps=ADAM["eps"],
        foreach=False,
    )
    losses = []
    for _ in range(ADAM_STEPS):
        opt.zero_grad(set_to_none=False)
        _, loss = forward(p, tokens, targets, placement, lns)
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), ADAM["clip_grad"])
        opt.step()
    return losses


def make_fixture(path, placement, lns, seed, check):
    gen = torch.Generator().manual_seed(seed)
    p = init_params(placement, gen)
    B, T, V = CONFIG["batch_size"], CONFIG["seq_length"], CONFIG["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)

    if check:
        worst = finite_difference_check(p, tokens, targets, placement, lns, gen)
        print(f"  finite differences agree with autograd: worst absolute error {worst:.2e}")

    logits, loss = forward(p, tokens, targets, placement, lns)
    grads = torch.autograd.grad(loss, list(p.values()))
    initial = {n: w.detach().clone() for n, w in p.items()}
    adam_losses = adam_run(p, tokens, targets, placement, lns)

    with h5py.File(path, "w") as f:
        for key, value in CONFIG.items():
            f.attrs[key] = np.int64(value)
        f.attrs["rotary_base"] = np.float64(ROTARY_BASE)
        f.attrs["norm_eps"] = np.float64(NORM_EPS)
        f.attrs["norm_placement"] = placement
        f.attrs["layernorm_scaling"] = np.int64(1 if lns else 0)
        for key, value in ADAM.items():
            f.attrs[key] = np.float64(value)
        f.create_dataset("alpha", data=np.array(ALPHA, dtype=np.float64))
        f.create_dataset("tokens", data=tokens.numpy().astype(np.int32))
        f.create_dataset("targets", data=targets.numpy().astype(np.int32))
        f.create_dataset("logits", data=logits.detach().numpy())
        f.create_dataset("loss", data=np.float64(loss.item()))
        for (name, w), g in zip(initial.items(), grads):
            f.create_dataset(f"param/{name}", data=w.numpy())
            f.create_dataset(f"grad/{name}", data=g.numpy())
        f.create_dataset("adam_losses", data=np.array(adam_losses, dtype=np.float64))
        for name, w in p.items():
            f.create_dataset(f"adam_final/{name}", data=w.detach().numpy())
    print(f"{path}: loss {loss.item():.6f}, adam losses " + " ".join(f"{x:.6f}" for x in adam_losses))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parents[1] / "fixtures")
    parser.add_argument("--check", action="store_true", help="finite-difference check of the gradients")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for stem, placement, lns, seed in FIXTURES:
        make_fixture(args.out_dir / f"{stem}.h5", placement, lns, seed, args.check)


if __name__ == "__main__":
    main()
