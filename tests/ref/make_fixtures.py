#!/usr/bin/python3
"""Writes the PyTorch reference fixtures in tests/ref/ (run by hand; the C++ tests only read the files).

Needs Debian's python3-torch and python3-torchvision (`apt-get install python3-torch python3-torchvision`):
    /usr/bin/python3 tests/ref/make_fixtures.py

Every fixture stores its inputs and parameters as F32 and computes the expected outputs and gradients in
F64 from exactly those F32 values, then rounds them to F32. The C++ tests run the same computation in F32
(agreement within 1e-4 relative) and in F64 (agreement to F32 rounding).

Files (safetensors, written here without the safetensors package: u64 header length, JSON, raw bytes):
  conv.safetensors       conv2d forward and gradients for several stride/padding/dilation/groups cases
  batch_norm.safetensors batch norm 1-D/2-D, training (with running-stat update) and eval, with gradients
  resnet34_w4.safetensors  a width-4 ResNet-34 (image preset, 10 classes; audio preset, 6 classes): weights,
                         input, upstream gradient, train-mode logits and stage outputs, every parameter's
                         gradient and the input's, the updated running statistics, then eval-mode logits
"""
import json
import os
import struct

import torch
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save(path, tensors, metadata):
    """Minimal safetensors writer: tensors in insertion order, header padded with spaces to 8 bytes."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype == torch.float64:  # expected values: computed in F64, stored as F32
            t = t.float()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(tmp, path)
    print(f"{os.path.relpath(path)}: {len(tensors)} tensors, {os.path.getsize(path) / 1024:.0f} KiB")


def f32(*shape, scale=1.0, shift=0.0):
    """Random F32 values randn * scale + shift, rounded to F32 and returned as F64, so the reference
    computes in F64 on exactly the values the fixture stores."""
    return (torch.randn(*shape).double() * scale + shift).float().double()


def conv_fixtures():
    # (name, N, C_in, H, W, C_out, kH, kW, stride, padding, dilation, groups, bias)
    cases = [
        ("basic", 2, 3, 9, 11, 5, 3, 3, (2, 2), (1, 1), (1, 1), 1, True),
        ("groups_dilation", 2, 4, 8, 7, 6, 3, 2, (1, 1), (2, 1), (2, 2), 2, False),
        ("pointwise_stride", 3, 6, 7, 5, 4, 1, 1, (2, 2), (0, 0), (1, 1), 1, False),
        ("stem7x7", 1, 3, 13, 12, 4, 7, 7, (2, 2), (3, 3), (1, 1), 1, False),
        ("depthwise", 2, 4, 6, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), 4, True),
    ]
    out = {}
    for name, n, cin, h, w, cout, kh, kw, stride, pad, dil, groups, bias in cases:
        x = f32(n, cin, h, w).requires_grad_()
        wt = f32(cout, cin // groups, kh, kw, scale=0.3).requires_grad_()
        b = f32(cout).requires_grad_() if bias else None
        y = F.conv2d(x, wt, b, stride, pad, dil, groups)
        dy = f32(*y.shape)
        y.backward(dy)
        p = f"{name}."
        out.update({p + "x": x, p + "weight": wt, p + "dy": dy, p + "y": y, p + "dx": x.grad, p + "dweight": wt.grad})
        if bias:
            out.update({p + "bias": b, p + "dbias": b.grad})
        out[p + "geometry"] = torch.tensor([*stride, *pad, *dil, groups], dtype=torch.int64)
    save(os.path.join(HERE, "conv.safetensors"), out, {"cases": ",".join(c[0] for c in cases)})


def batch_norm_fixtures():
    # (name, input shape, training)
    cases = [("train2d", (4, 3, 5, 6), True), ("eval2d", (3, 5, 4, 3), False),
             ("train1d", (6, 4), True), ("train1d_seq", (3, 4, 7), True), ("eval1d_seq", (2, 3, 5), False)]
    out = {}
    for name, shape, training in cases:
        c = shape[1]
        x = f32(*shape, scale=2, shift=0.5).requires_grad_()
        weight = f32(c, scale=0.5, shift=1).requires_grad_()
        bias = f32(c).requires_grad_()
        running_mean, running_var = f32(c, scale=0.1), (f32(c).abs() + 0.5).float().double()
        p = f"{name}."
        out.update({p + "x": x, p + "weight": weight, p + "bias": bias,
                    p + "running_mean": running_mean.clone(), p + "running_var": running_var.clone()})
        y = F.batch_norm(x, running_mean, running_var, weight, bias, training, 0.1, 1e-5)
        dy = f32(*y.shape)
        y.backward(dy)
        out.update({p + "dy": dy, p + "y": y, p + "dx": x.grad, p + "dweight": weight.grad, p + "dbias": bias.grad,
                    p + "new_running_mean": running_mean, p + "new_running_var": running_var})
    save(os.path.join(HERE, "batch_norm.safetensors"), out, {"cases": ",".join(c[0] for c in cases)})


class ResNet34(torch.nn.Module):
    """torchvision's ResNet-34 with a configurable width, input channels, stem padding and head name, built
    from torchvision's own BasicBlock so the parameter names are torchvision's."""

    def __init__(self, width, in_channels, stem_padding, num_classes, head_name):
        super().__init__()
        block = torchvision.models.resnet.BasicBlock
        self.conv1 = torch.nn.Conv2d(in_channels, width, 7, 2, stem_padding, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for i, blocks in enumerate([3, 4, 6, 3]):
            planes, stride = width << i, 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = torch.nn.Sequential(torch.nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                           torch.nn.BatchNorm2d(planes))
            layers = [block(inplanes, planes, stride, down)] + [block(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", torch.nn.Sequential(*layers))
            inplanes = planes
        self.head_name = head_name
        setattr(self, head_name, torch.nn.Linear(8 * width, num_classes))

    def forward(self, x):
        h = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        stages = []
        for i in range(4):
            h = getattr(self, f"layer{i + 1}")(h)
            stages.append(h)
        logits = getattr(self, self.head_name)(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
        return stages, logits


def resnet_fixture(out, prefix, model, x):
    # Random BN affine parameters and running statistics, so the fixture exercises them (the defaults
    # are ones and zeros).
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape) + 0.5)
    model.double()
    for name, t in model.state_dict().items():
        out[f"{prefix}model.{name}"] = t.clone()
    x = x.double().requires_grad_()
    model.train()
    stages, logits = model(x)
    dy = f32(*logits.shape)
    logits.backward(dy)
    out[f"{prefix}input"], out[f"{prefix}dy"], out[f"{prefix}train.logits"] = x, dy, logits
    for i, s in enumerate(stages):
        out[f"{prefix}train.layer{i + 1}"] = s
    out[f"{prefix}grad.input"] = x.grad
    for name, p in model.named_parameters():
        out[f"{prefix}grad.{name}"] = p.grad
    for name, t in model.state_dict().items():
        if "running" in name:
            out[f"{prefix}updated.{name}"] = t.clone()
    model.eval()
    with torch.no_grad():
        out[f"{prefix}eval.logits"] = model(x)[1]


def resnet_fixtures():
    out = {}
    image = ResNet34(4, 3, 3, 10, "fc")
    reference = torchvision.models.resnet34()  # same names as torchvision's, checked here
    assert [k for k in image.state_dict()] == [k for k in reference.state_dict()]
    resnet_fixture(out, "image.", image, torch.rand(4, 3, 48, 40))
    resnet_fixture(out, "audio.", ResNet34(4, 1, 2, 6, "classifier"), torch.randn(2, 1, 70, 57))
    save(os.path.join(HERE, "resnet34_w4.safetensors"), out, {"width": "4"})


if __name__ == "__main__":
    torch.manual_seed(0)
    conv_fixtures()
    batch_norm_fixtures()
    resnet_fixtures()
