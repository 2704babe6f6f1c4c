#!/usr/bin/env python3
"""The CNN of examples/digits_cnn.rs in PyTorch, for bench/compare-general.sh.

Same data (examples/data/digits.csv, 1,797 8x8 images), same sizes (a
quarter held out: 1,347 train, 450 test; the split is a seeded permutation,
not ferrograd's, which changes the accuracy a little and the time not at
all), same per-pixel standardisation with the training images' statistics,
same network: Unflatten -> Conv2d(1, C, 3, padding=1) -> ReLU ->
MaxPool2d(2) -> Flatten -> Linear(16 C, 10), the conv with PyTorch's default
init and the Linear with ferrograd's (uniform +-0.5 sqrt(2 / (in + out)),
bias 0). Same loop: a fresh shuffle per epoch, batches of B (last one
short), mean softmax cross-entropy, AdamW (PyTorch's defaults but lr). f32,
torch.set_num_threads(T).

Prints one JSON line: the training time in seconds (the epochs only, not
loading or evaluation) and the test accuracy.

    python3 bench/torch_cnn.py --epochs 20 --batch 32 --threads 2
"""

import argparse
import csv
import json
import math
import os
import time

import torch


def load(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    x = torch.tensor([[float(v) for v in r[:64]] for r in rows], dtype=torch.float32)
    y = torch.tensor([int(float(r[64])) for r in rows])
    return x, y


def network(channels):
    linear = torch.nn.Linear(16 * channels, 10)
    bound = 0.5 * math.sqrt(2 / (16 * channels + 10))
    torch.nn.init.uniform_(linear.weight, -bound, bound)
    torch.nn.init.zeros_(linear.bias)
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, channels, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        linear,
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    x, y = load(os.path.join(root, "examples/data/digits.csv"))
    order = torch.randperm(len(x))
    n_test = round(0.25 * len(x))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0, unbiased=False)
    std[std == 0] = 1.0
    x = (x - mean) / std
    xt, yt = x[train], y[train]
    model = network(a.channels)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr)
    started = time.perf_counter()
    for _ in range(a.epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), a.batch):
            idx = perm[i : i + a.batch]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        acc = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "epochs": a.epochs,
                      "batch": a.batch, "train_seconds": round(seconds, 4), "test_accuracy": round(acc, 4)}))


if __name__ == "__main__":
    main()
