#!/usr/bin/env python3
"""The PyTorch side of stgs_bench's ResNet-34 rows: the same work, timed the same way, one JSON per line.

    python3 apps/bench_resnet_torch.py --device cpu --batch 8 --threads 2 --reps 3

For each preset (image: torchvision resnet34, 3x224x224; audio: AutoSpeech stem conv 7x7 stride 2 padding
2, 1x300x257) and mode (infer: eval, no grad; train: forward, cross entropy, backward, SGD momentum 0.9),
prints {"preset", "mode", "img_s", "ms"} with the median of `reps` timed steps after two warm-up steps.
FP32 on the CPU; on CUDA FP32 with TF32 off unless --tf32, cudnn.benchmark on.
"""
import argparse
import json
import time

import torch
import torchvision


def build(preset, device):
    model = torchvision.models.resnet34(num_classes=2)
    shape = (3, 224, 224)
    if preset == "audio":
        model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 2, bias=False)
        shape = (1, 300, 257)
    return model.to(device), shape


def time_steps(step, reps, device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):
        step()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tf32", action="store_true")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(0)
    for preset in ("image", "audio"):
        model, shape = build(preset, device)
        x = torch.randn(args.batch, *shape, device=device)
        labels = torch.randint(0, 2, (args.batch,), device=device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def infer():
            model.eval()
            with torch.no_grad():
                model(x)

        def train():
            model.train()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), labels).backward()
            opt.step()

        for mode, step in (("infer", infer), ("train", train)):
            seconds = time_steps(step, args.reps, device)
            print(json.dumps({"preset": preset, "mode": mode, "img_s": args.batch / seconds, "ms": seconds * 1e3}),
                  flush=True)


if __name__ == "__main__":
    main()
