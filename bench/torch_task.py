#!/usr/bin/env python3
"""The task protocol (docs/guide/benchmark-task.md) in PyTorch, for
bench/compare.sh (CPU) and bench/gpu-check.sh (`--device cuda`: PyTorch
CUDA eager, the same loop with the data and model on the GPU, the batch
indices moved per step as a plain PyTorch user would, and the epoch timed
through the validation loss's `.item()`, which waits for the GPU).

Same model as ferrograd's `Mlp::task`: [1, 256 x n_hidden, 2], every hidden
layer Linear -> ReLU -> BatchNorm1d (momentum 0.1, eps 1e-5), the last hidden
Linear with its BatchNorm and the output Linear frozen (requires_grad False),
weights uniform in +-0.5*sqrt(2/(fan_in+fan_out)), biases 0. Same data sizes
(1000 train, 200 validation, random Fourier features, 1 input, 2 outputs),
same loop: a fresh shuffle per epoch, batches of 128 (7 x 128 + 104), loss
the sum of squared errors, gradients clipped to +-1 by value, Adam lr 1e-3
(betas 0.9/0.999, eps 1e-8), then validation MSE in eval mode and a copy of
the best model when validation improves. f32, torch.set_num_threads(T).

Prints one JSON line: median and min ms per epoch over the timed epochs
(after warm-up) and the GFLOP/s of torch.mm at 128x256x256 with the weight
read transposed (the forward of a hidden layer).

    python bench/torch_task.py --n-hidden 4 --epochs 30 --warmup 3 --threads 2
"""

import argparse
import json
import math
import statistics
import time

import numpy as np
import torch


def data(seed, n_train=1000, n_val=200, features=128, lengthscale=0.3, noise=0.2):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((2, features)) / lengthscale**2
    b = rng.uniform(0, 2 * math.pi, (2, features))
    a = rng.standard_normal((2, features))

    def split(n):
        x = rng.uniform(-1, 1, (n, 1))
        f = math.sqrt(2 / features) * (a[None] * np.cos(x[:, :, None] * w[None] + b[None])).sum(-1)
        y = f + noise * rng.standard_normal(f.shape)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)

    return split(n_train), split(n_val)


def model(n_hidden, seed):
    torch.manual_seed(seed)
    widths = [1] + [256] * n_hidden + [2]
    layers, linears, norms = [], [], []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        lin = torch.nn.Linear(fan_in, fan_out)
        bound = 0.5 * math.sqrt(2 / (fan_in + fan_out))
        torch.nn.init.uniform_(lin.weight, -bound, bound)
        torch.nn.init.zeros_(lin.bias)
        layers.append(lin)
        linears.append(lin)
        if i + 1 < len(widths) - 1:
            bn = torch.nn.BatchNorm1d(fan_out, momentum=0.1, eps=1e-5)
            layers += [torch.nn.ReLU(), bn]
            norms.append(bn)
    net = torch.nn.Sequential(*layers)
    # The task freezes the last two Linear layers and the last hidden BatchNorm.
    for module in linears[-2:] + norms[-1:]:
        for p in module.parameters():
            p.requires_grad_(False)
    return net


def gemm_gflops():
    x = torch.randn(128, 256)
    w = torch.randn(256, 256)
    out = torch.empty(128, 256)
    rounds = []
    with torch.inference_mode():
        for _ in range(21):
            t = time.perf_counter()
            for _ in range(50):
                torch.mm(x, w.t(), out=out)
            rounds.append((time.perf_counter() - t) / 50)
    return 2 * 128 * 256 * 256 / statistics.median(rounds) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n-hidden", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    (xt, yt), (xv, yv) = data(a.seed)
    xt, yt, xv, yv = (t.to(dev) for t in (xt, yt, xv, yv))
    net = model(a.n_hidden, a.seed).to(dev)
    params = [q for q in net.parameters() if q.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    best_val, best_state = float("inf"), None
    times = []
    for epoch in range(a.warmup + a.epochs):
        t = time.perf_counter()
        net.train()
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), a.batch):
            idx = order[start : start + a.batch].to(dev)
            opt.zero_grad(set_to_none=True)
            loss = ((net(xt[idx]) - yt[idx]) ** 2).sum()
            loss.backward()
            torch.nn.utils.clip_grad_value_(params, 1.0)
            opt.step()
        net.eval()
        with torch.no_grad():
            val = torch.mean((net(xv) - yv) ** 2).item()
        if val < best_val - 1e-7:
            best_val = val
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if epoch >= a.warmup:
            times.append(time.perf_counter() - t)
    assert best_state is not None
    print(json.dumps({
        "framework": "pytorch " + torch.__version__,
        "n_hidden": a.n_hidden,
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "epochs": a.epochs,
        "ms_per_epoch_median": 1e3 * statistics.median(times),
        "ms_per_epoch_min": 1e3 * min(times),
        "gemm_gflops": gemm_gflops() if dev.type == "cpu" else None,
        "last_val_loss": val,
    }))


if __name__ == "__main__":
    main()
