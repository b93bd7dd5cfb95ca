#!/usr/bin/env python3
"""The PyTorch side of stgs_bench's search-iteration row: the same STGS-BMNAS search network and the same
bilevel iteration in PyTorch eager, timed the same way; prints one JSON line.

    python3 apps/bench_search_torch.py --device cpu --threads 2 --batch 8 --samples 15 --reps 5

One iteration = a weight step on a train batch (M architecture draws, losses averaged, one backward, SGD
momentum 0.9 with weight decay 3e-3) then an architecture step on a validation batch (M fresh draws, Adam
lr 3e-3, betas (0.5, 0.999), weight decay 1e-3). Exact path: every op of every edge is evaluated and
weighted by the straight-through hard sample. Reshape layers run once per batch (they do not depend on the
architecture). Sizes: 8 input nodes (image and audio layer1..4 of width-64 ResNet-34s: 64..512 channels),
C = 128, L = 8, 2 cells of 2 steps, ops {zero, sum, attention, linear_glu, concat_fc}, dropout 0.2.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, C, L):
        super().__init__()
        self.ln = nn.LayerNorm([C, L])
        self.drop = nn.Dropout(0.1)
        self.scale = 1.0 / math.sqrt(C)

    def forward(self, x, y):  # x: query (B, C, L); y: keys and values
        a = torch.softmax(torch.bmm(x.transpose(1, 2), y) * self.scale, dim=-1)  # (B, L, L)
        return self.ln(self.drop(torch.bmm(a, y.transpose(1, 2)).transpose(1, 2)))


class LinearGLU(nn.Module):
    def __init__(self, C, p):
        super().__init__()
        self.conv, self.bn, self.drop = nn.Conv1d(2 * C, 2 * C, 1), nn.BatchNorm1d(2 * C), nn.Dropout(p)

    def forward(self, x, y):
        return self.drop(F.glu(self.bn(self.conv(torch.cat([x, y], 1))), dim=1))


class ConcatFC(nn.Module):
    def __init__(self, C, p):
        super().__init__()
        self.conv, self.bn, self.drop = nn.Conv1d(2 * C, C, 1), nn.BatchNorm1d(C), nn.Dropout(p)

    def forward(self, x, y):
        return self.drop(F.relu(self.bn(self.conv(torch.cat([x, y], 1)))))


class MixedStep(nn.Module):
    """All five ops on (t, t), weighted by one gamma row."""

    def __init__(self, C, L, p):
        super().__init__()
        self.attn, self.glu, self.fc = Attention(C, L), LinearGLU(C, p), ConcatFC(C, p)

    def forward(self, t, w):  # w: (5,) zero, sum, attention, linear_glu, concat_fc
        return (w[0] * torch.zeros_like(t) + w[1] * (t + t) + w[2] * self.attn(t, t) + w[3] * self.glu(t, t)
                + w[4] * self.fc(t, t))


class Cell(nn.Module):
    def __init__(self, C, L, steps, p):
        super().__init__()
        self.steps = nn.ModuleList([MixedStep(C, L, p) for _ in range(steps)])
        self.out = nn.Sequential(nn.Conv1d(steps * C, C, 1), nn.BatchNorm1d(C), nn.ReLU(), nn.Dropout(p))
        self.ln = nn.LayerNorm([C, L])

    def forward(self, x, beta, gamma):  # beta: rows of this cell (sum_k 2 + k, 2), gamma: (steps, 5)
        states, row = [x, x], 0
        for k, step in enumerate(self.steps):
            t = sum(beta[row + j, 1] * states[j] for j in range(2 + k))  # Zero edges contribute 0
            row += 2 + k
            states.append(step(t, gamma[k]))
        return self.ln(self.out(torch.cat(states[2:], 1)) + x)


class SearchNetwork(nn.Module):
    def __init__(self, channels, C=128, L=8, cells=2, steps=2, p=0.2, classes=2):
        super().__init__()
        self.reshape = nn.ModuleList([nn.Sequential(nn.Conv1d(c, C, 1), nn.BatchNorm1d(C), nn.ReLU(), nn.Dropout(p))
                                      for c in channels])
        self.cells = nn.ModuleList([Cell(C, L, steps, p) for _ in range(cells)])
        self.head_ln = nn.LayerNorm([cells * C, L])
        self.head = nn.Linear(cells * C * L, classes)
        self.n, self.steps = len(channels), steps

    def forward(self, nodes, alpha, beta, gamma):
        nodes, row, outs = list(nodes), 0, []
        per_cell = sum(2 + k for k in range(self.steps))
        for v, cell in enumerate(self.cells):
            x = sum(alpha[row + u, 1] * nodes[u] for u in range(self.n + v))
            row += self.n + v
            h = cell(x, beta[v * per_cell:(v + 1) * per_cell], gamma[v * self.steps:(v + 1) * self.steps])
            nodes.append(h)
            outs.append(h)
        return self.head(torch.flatten(F.relu(self.head_ln(torch.cat(outs, 1))), 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--lam", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    channels = [64, 128, 256, 512] * 2
    cells, steps, N = 2, 2, len(channels)
    net = SearchNetwork(channels).to(dev)
    alpha = (1e-3 * torch.randn(sum(N + v for v in range(cells)), 2, device=dev)).requires_grad_()
    beta = (1e-3 * torch.randn(cells * sum(2 + k for k in range(steps)), 2, device=dev)).requires_grad_()
    gamma = (1e-3 * torch.randn(cells * steps, 5, device=dev)).requires_grad_()
    w_opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=3e-3)
    a_opt = torch.optim.Adam([alpha, beta, gamma], lr=3e-3, betas=(0.5, 0.999), weight_decay=1e-3)

    def batch():
        feats = [torch.randn(args.batch, c, 8, device=dev) for c in channels]
        return feats, torch.randint(0, 2, (args.batch,), device=dev)

    train, val = batch(), batch()

    def sampled_loss(feats, labels):
        nodes = [r(f) for r, f in zip(net.reshape, feats)]
        loss = 0
        for _ in range(args.samples):
            a, b, g = (F.gumbel_softmax(t, tau=args.lam, hard=True) for t in (alpha, beta, gamma))
            loss = loss + F.cross_entropy(net(nodes, a, b, g), labels)
        return loss / args.samples

    def iteration():
        net.train()
        w_opt.zero_grad()
        sampled_loss(*train).backward()
        w_opt.step()
        a_opt.zero_grad()
        sampled_loss(*val).backward()
        a_opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):
        iteration()
    sync()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        iteration()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"ms": times[len(times) // 2] * 1e3, "samples": args.samples, "batch": args.batch}), flush=True)


if __name__ == "__main__":
    main()
