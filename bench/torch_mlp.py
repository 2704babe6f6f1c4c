#!/usr/bin/env python3
"""The MLPs of bench/src/bin/general_mlp.rs in PyTorch eager, for
bench/compare-general.sh: the same model (Linear -> act per hidden layer;
relu_bn: Linear -> BatchNorm1d -> ReLU; GELU in its tanh form, as
ferrograd's), the same data sizes (random normal inputs, random labels),
softmax cross-entropy, Adam (lr 1e-3), f32, a fresh shuffle per epoch,
batches of B (the last one short), torch.set_num_threads(T).

Prints one JSON line with the median milliseconds per timed epoch.

    python3 bench/torch_mlp.py --widths 64,256,256,256,10 --act tanh --batch 128
"""

import argparse
import json
import statistics
import time

import torch


def model(widths, act):
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i == len(widths) - 2:
            break
        if act == "relu_bn":
            layers += [torch.nn.BatchNorm1d(b), torch.nn.ReLU()]
        else:
            layers.append({"tanh": torch.nn.Tanh(), "relu": torch.nn.ReLU(), "gelu": torch.nn.GELU(approximate="tanh")}[act])
    return torch.nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--widths", default="64,256,256,256,10")
    p.add_argument("--act", default="tanh", choices=["tanh", "relu", "relu_bn", "gelu"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    widths = [int(w) for w in a.widths.split(",")]
    x = torch.randn(a.samples, widths[0])
    y = torch.randint(0, widths[-1], (a.samples,))
    net = model(widths, a.act)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for epoch in range(a.warmup + a.epochs):
        started = time.perf_counter()
        order = torch.randperm(a.samples)
        for rows in order.split(a.batch):
            opt.zero_grad()
            loss = loss_fn(net(x[rows]), y[rows])
            loss.backward()
            opt.step()
        if epoch >= a.warmup:
            times.append(time.perf_counter() - started)
    print(json.dumps({
        "framework": "pytorch",
        "widths": a.widths,
        "act": a.act,
        "batch": a.batch,
        "threads": a.threads,
        "ms_per_epoch": round(1e3 * statistics.median(times), 3),
    }))


if __name__ == "__main__":
    main()
