"""PyTorch reference for `npm run bench:train`: the same Gemma 2 training step (forward,
cross-entropy, backward, AdamW) at sequence 128, batch 8, configs A and B of issue 5, timed the
same way (median of 3 steps after one warm-up). Needs Debian's python3-torch (1.13) and, for a
fair comparison, libopenblas0-pthread.

    python3 scripts/pytorch-train-step.py [threads ...]
"""
import math, sys, time
import torch
import torch.nn.functional as F

CONFIGS = {
    "A": dict(vocab=256000, d=128, layers=4, heads=4, kv=2, head_dim=32, ffn=512),
    "B": dict(vocab=8192, d=256, layers=6, heads=4, kv=2, head_dim=64, ffn=1024),
}
SEQ, BATCH, WINDOW = 128, 8, 64


class RMSNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(d))

    def forward(self, x):
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return x * (1 + self.weight)


class Layer(torch.nn.Module):
    def __init__(self, c, local):
        super().__init__()
        d, h, kv, hd, f = c["d"], c["heads"], c["kv"], c["head_dim"], c["ffn"]
        self.c, self.local = c, local
        self.q = torch.nn.Linear(d, h * hd, bias=False)
        self.k = torch.nn.Linear(d, kv * hd, bias=False)
        self.v = torch.nn.Linear(d, kv * hd, bias=False)
        self.o = torch.nn.Linear(h * hd, d, bias=False)
        self.gate = torch.nn.Linear(d, f, bias=False)
        self.up = torch.nn.Linear(d, f, bias=False)
        self.down = torch.nn.Linear(f, d, bias=False)
        self.norms = torch.nn.ModuleList([RMSNorm(d) for _ in range(4)])

    def forward(self, x, cos, sin, mask):
        c = self.c
        B, T, _ = x.shape
        h = self.norms[0](x)
        q = self.q(h).view(B, T, c["heads"], c["head_dim"]).transpose(1, 2)
        k = self.k(h).view(B, T, c["kv"], c["head_dim"]).transpose(1, 2)
        v = self.v(h).view(B, T, c["kv"], c["head_dim"]).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = c["heads"] // c["kv"]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-1, -2)) * c["head_dim"] ** -0.5
        s = 50.0 * torch.tanh(s / 50.0)
        s = s.masked_fill(~mask, float("-inf"))
        a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.norms[1](self.o(a))
        h = self.norms[2](x)
        m = F.gelu(self.gate(h), approximate="tanh") * self.up(h)
        return x + self.norms[3](self.down(m))


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Gemma2(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = torch.nn.Embedding(c["vocab"], c["d"])
        self.layers = torch.nn.ModuleList([Layer(c, i % 2 == 0) for i in range(c["layers"])])
        self.norm = RMSNorm(c["d"])
        inv = 1.0 / (10000 ** (torch.arange(0, c["head_dim"], 2).float() / c["head_dim"]))
        ang = torch.arange(SEQ).float()[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos(), ang.sin()
        i = torch.arange(SEQ)
        causal = i[None, :] <= i[:, None]
        self.masks = {True: causal & (i[:, None] - i[None, :] < WINDOW), False: causal}

    def forward(self, ids):
        x = self.embed(ids) * math.sqrt(self.c["d"])
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, self.masks[layer.local])
        logits = self.norm(x) @ self.embed.weight.T
        return 30.0 * torch.tanh(logits / 30.0)


def main():
    threads = [int(t) for t in sys.argv[1:]] or [1, 2]
    print(f"torch {torch.__version__}, BLAS: {'openblas' if 'openblas' in torch.__config__.show().lower() else 'other'}")
    for name, c in CONFIGS.items():
        for n in threads:
            torch.set_num_threads(n)
            torch.manual_seed(0)
            model = Gemma2(c)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)

            def step():
                t = time.perf_counter()
                ids = torch.randint(0, c["vocab"], (BATCH, SEQ + 1))
                logits = model(ids[:, :-1])
                loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), ids[:, 1:].reshape(-1))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                return time.perf_counter() - t

            step()
            times = sorted(step() for _ in range(3))
            print(f"config {name}, {n} thread(s): {BATCH * SEQ / times[1]:.1f} tokens/s (median step {times[1]:.2f} s)")


main()
