#!/usr/bin/env python3
"""Golden fixtures for dlgrade's architecture arithmetic (issue 3).

Every case is a request in dlgrade's own model-description format. This
script builds the same model in the REAL framework named by the case
(PyTorch, or Keras 3 on the JAX backend), runs a batch-1 tensor through it and
records, per layer: output shape, parameter counts (trainable /
non-trainable) and weight shapes; for the cases marked `rf`, an EMPIRICAL
receptive field (PyTorch autograd: gradient of one output unit w.r.t. the
input with all-ones weights, zero biases, max pooling replaced by average
pooling of the same geometry so no tie hides a position; the nonzero extent
per spatial axis). Invalid architectures are recorded with the framework's
own error (the framework must fail too). Inverse ("solve") cases are
brute-forced by building the model for every candidate value.

Install (once):
    python -m venv venv && venv/bin/pip install numpy jax keras torch torchinfo==1.8.0
Run from the repository root:
    KERAS_BACKEND=jax venv/bin/python tests/reference/gen_architecture.py
It writes tests/fixtures/architecture.json (deterministic; commit it).
"""

import json
import math
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchinfo  # noqa: E402
from torch import nn  # noqa: E402

torch.set_grad_enabled(True)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "architecture.json")


def norm(s):
    return s.lower().replace("_", "").replace("-", "")


def g(d, *names, default=None):
    for n in names:
        for k, v in d.items():
            if norm(k) == norm(n):
                return v
    return default


def tup(v, rank):
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,) * rank


def rank_of(t):
    for r in "123":
        if t.endswith(r + "d"):
            return int(r)
    return None


# ----------------------------------------------------------------------------- PyTorch


class Last(nn.Module):
    """Recurrent wrapper: output sequence or last step."""

    def __init__(self, rnn, seq):
        super().__init__()
        self.rnn = rnn
        self.seq = seq

    def forward(self, x):
        y = self.rnn(x)[0]
        return y if self.seq else y[:, -1, :]


class GlobalPool(nn.Module):
    def __init__(self, op, rank, keep):
        super().__init__()
        self.op, self.rank, self.keep = op, rank, keep

    def forward(self, x):
        dims = tuple(range(2, 2 + self.rank))
        if self.op == "max":
            y = torch.amax(x, dim=dims, keepdim=self.keep)
        else:
            y = torch.mean(x, dim=dims, keepdim=self.keep)
        return y


def torch_pad_module(pairs, rank):
    flat = []
    for b, a in reversed(pairs):
        flat += [b, a]
    return nn.ConstantPad1d(tuple(flat), 0.0) if rank == 1 else (
        nn.ConstantPad2d(tuple(flat), 0.0) if rank == 2 else nn.ConstantPad3d(tuple(flat), 0.0))


def torch_layer(L, x, rf_mode=False):
    """Returns a module mapping x (batched) to the layer output."""
    t = norm(g(L, "type"))
    r = rank_of(t)
    in_shape = tuple(x.shape[1:])
    if t in ("linear", "dense"):
        return nn.Linear(g(L, "in_features", default=in_shape[-1]), g(L, "out_features", "units"),
                         bias=g(L, "bias", "use_bias", default=True))
    if t.startswith("convtranspose"):
        cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[r]
        pad = g(L, "padding", default=0)
        return cls(in_shape[0], g(L, "out_channels", "filters"), tup(g(L, "kernel_size"), r),
                   stride=tup(g(L, "stride", "strides", default=1), r), padding=tup(pad, r),
                   output_padding=tup(g(L, "output_padding", default=0), r), groups=g(L, "groups", default=1),
                   bias=g(L, "bias", "use_bias", default=True), dilation=tup(g(L, "dilation", default=1), r))
    if t.startswith("conv") or t.startswith("depthwiseconv") or t.startswith("separableconv"):
        cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[r]
        cin = in_shape[0]
        pad = g(L, "padding", default=0)
        pre = None
        if isinstance(pad, list) and any(isinstance(p, list) for p in pad):
            pre = torch_pad_module(pad, r)
            pad = 0
        elif isinstance(pad, list):
            pad = tuple(pad)
        kw = dict(stride=tup(g(L, "stride", "strides", default=1), r), padding=pad,
                  dilation=tup(g(L, "dilation", "dilation_rate", default=1), r))
        k = tup(g(L, "kernel_size"), r)
        bias = g(L, "bias", "use_bias", default=True)
        if t.startswith("depthwiseconv"):
            mult = g(L, "depth_multiplier", default=1)
            conv = cls(cin, cin * mult, k, groups=cin, bias=bias, **kw)
        elif t.startswith("separableconv"):
            mult = g(L, "depth_multiplier", default=1)
            conv = nn.Sequential()
            conv.add_module("depthwise", cls(cin, cin * mult, k, groups=cin, bias=False, **kw))
            conv.add_module("pointwise", cls(cin * mult, g(L, "out_channels", "filters"), 1, bias=bias))
        else:
            conv = cls(cin, g(L, "out_channels", "filters"), k, groups=g(L, "groups", default=1), bias=bias, **kw)
        return nn.Sequential(pre, conv) if pre is not None else conv
    if t.startswith("maxpool") or t.startswith("avgpool"):
        k = tup(g(L, "kernel_size", "pool_size"), r)
        s = g(L, "stride", "strides")
        if s is None and TORCH_POOL_STRIDE_ONE[0]:
            s = 1
        s = None if s is None else tup(s, r)
        p = tup(g(L, "padding", default=0), r)
        ceil = g(L, "ceil_mode", default=False)
        if t.startswith("maxpool") and not rf_mode:
            cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[r]
            return cls(k, s, p, dilation=tup(g(L, "dilation", default=1), r), ceil_mode=ceil)
        cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[r]
        return cls(k, s, p, ceil_mode=ceil, count_include_pad=g(L, "count_include_pad", default=True))
    if t.startswith("global"):
        return GlobalPool("max" if "max" in t else "avg", r, g(L, "keepdims", default=False))
    if t.startswith("adaptiveavgpool") or t.startswith("adaptivemaxpool"):
        if "max" in t and not rf_mode:
            cls = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}[r]
        else:
            cls = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[r]
        o = g(L, "output_size")
        return cls(tuple(o) if isinstance(o, list) else o)
    if t.startswith("zeropad") or t.startswith("constantpad"):
        p = g(L, "padding")
        cls = {1: nn.ZeroPad1d, 2: nn.ZeroPad2d, 3: nn.ZeroPad3d}[r]
        return cls(tuple(p) if isinstance(p, list) else p)
    if t == "upsample":
        sf = g(L, "scale_factor")
        size = g(L, "size")
        return nn.Upsample(size=tuple(size) if isinstance(size, list) else size,
                           scale_factor=tuple(float(x) for x in sf) if isinstance(sf, list) else sf,
                           mode=g(L, "mode", default="nearest"))
    if t == "flatten":
        return nn.Flatten(g(L, "start_dim", default=1), g(L, "end_dim", default=-1))
    if t.startswith("dropout"):
        return nn.Dropout(g(L, "p", "rate", default=0.5))
    if t.startswith("batchnorm"):
        ndim = len(in_shape)
        cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}[ndim]
        return cls(in_shape[0], affine=g(L, "affine", default=True),
                   track_running_stats=g(L, "track_running_stats", default=True))
    if t == "layernorm":
        ns = g(L, "normalized_shape")
        return nn.LayerNorm(ns, elementwise_affine=g(L, "elementwise_affine", default=True),
                            bias=g(L, "bias", default=True))
    if t == "embedding":
        return nn.Embedding(g(L, "num_embeddings", "input_dim"), g(L, "embedding_dim", "output_dim"))
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU,
            "leakyrelu": nn.LeakyReLU, "softmax": lambda: nn.Softmax(dim=-1), "identity": nn.Identity,
            "silu": nn.SiLU, "relu6": nn.ReLU6}
    if t in acts:
        return acts[t]()
    if t in ("rnn", "simplernn", "lstm", "gru"):
        cls = {"rnn": nn.RNN, "simplernn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[t]
        rnn = cls(in_shape[-1], g(L, "hidden_size", "units"), num_layers=g(L, "num_layers", default=1),
                  bias=g(L, "bias", "use_bias", default=True), batch_first=True,
                  bidirectional=g(L, "bidirectional", default=False))
        return Last(rnn, g(L, "return_sequences", default=True))
    raise ValueError("no torch builder for " + t)


def torch_input(req, dtype=torch.float64):
    shape = (1,) + tuple(req["input_shape"])
    if any(norm(g(L, "type")) == "embedding" for L in req["layers"][:1]):
        vocab = g(req["layers"][0], "num_embeddings", "input_dim")
        return torch.arange(int(np.prod(shape))).reshape(shape) % vocab
    return torch.ones(shape, dtype=dtype)


def torch_weights(m, count_stats):
    out = []
    for name, p in m.named_parameters():
        out.append({"name": name, "shape": list(p.shape), "trainable": p.requires_grad})
    if count_stats:
        for name, b in m.named_buffers():
            if name.endswith("running_mean") or name.endswith("running_var"):
                out.append({"name": name, "shape": list(b.shape), "trainable": False})
    return out


TORCH_POOL_STRIDE_ONE = [False]


def run_torch(req, info=None):
    torch.manual_seed(0)
    TORCH_POOL_STRIDE_ONE[0] = (req.get("conventions") or {}).get("pool_stride_default") == "one"
    x = torch_input(req, torch.float32)
    x_in = x
    count_stats = (req.get("conventions") or {}).get("count_bn_running_stats", False)
    layers = []
    mods = []
    for L in req["layers"]:
        m = torch_layer(L, x)
        mods.append(m)
        if g(L, "trainable", default=True) is False:
            for p in m.parameters():
                p.requires_grad_(False)
        m.eval()
        with torch.no_grad():
            x = m(x)
        ws = torch_weights(m, count_stats)
        tr = sum(int(np.prod(w["shape"])) for w in ws if w["trainable"])
        nt = sum(int(np.prod(w["shape"])) for w in ws if not w["trainable"])
        layers.append({"output_shape": list(x.shape[1:]), "params": tr + nt, "trainable": tr,
                       "non_trainable": nt, "weights": [w["shape"] for w in ws]})
    if info is not None:
        s = torchinfo.summary(nn.Sequential(*mods), input_data=[x_in], verbose=0)
        info.update({"mult_adds": int(s.total_mult_adds), "pass_bytes": int(s.total_output_bytes),
                     "param_bytes": int(s.total_param_bytes)})
    return layers


def torch_rf(req):
    """Empirical receptive field after every layer (CHW input, rank >= 2)."""
    x0 = torch_input(req)
    x0.requires_grad_(True)
    spatial = list(req["input_shape"][1:])
    mods = []
    x = x0.detach()
    for L in req["layers"]:
        m = torch_layer(L, x, rf_mode=True).double()
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.fill_(0.0 if name.endswith("bias") else 1.0)
        m.eval()
        mods.append(m)
        with torch.no_grad():
            x = m(x)
    out = []
    for i in range(len(mods)):
        y = x0
        for m in mods[: i + 1]:
            y = m(y)
        ys = tuple(y.shape[1:])
        if len(ys) == len(spatial) + 1:
            unit = [d // 2 for d in ys[1:]]
            sel = y[(0, 0) + tuple(unit)]
        elif len(ys) == 1:
            unit = None
            sel = y[0, 0]
        else:
            out.append(None)
            continue
        (grad,) = torch.autograd.grad(sel, x0)
        nz = grad[0].abs().sum(dim=0) > 0
        lo, hi = [], []
        for ax in range(len(spatial)):
            other = tuple(a for a in range(len(spatial)) if a != ax)
            idx = torch.nonzero(nz.any(dim=other) if other else nz).flatten().tolist()
            lo.append(min(idx))
            hi.append(max(idx))
        out.append({"unit": unit, "lo": lo, "hi": hi})
    return out


# ----------------------------------------------------------------------------- Keras


def keras_layer(L):
    t = norm(g(L, "type"))
    kl = keras.layers
    r = rank_of(t)
    bias = g(L, "use_bias", "bias", default=True)
    if t in ("dense", "linear"):
        return kl.Dense(g(L, "units"), use_bias=bias, activation=g(L, "activation"))
    if t.endswith("transpose"):
        cls = {1: kl.Conv1DTranspose, 2: kl.Conv2DTranspose, 3: kl.Conv3DTranspose}[int(t[4])]
        return cls(g(L, "filters"), g(L, "kernel_size"), strides=g(L, "strides", default=1),
                   padding=g(L, "padding", default="valid"), output_padding=g(L, "output_padding"),
                   dilation_rate=g(L, "dilation_rate", default=1), use_bias=bias)
    if t.startswith("depthwiseconv"):
        cls = {1: kl.DepthwiseConv1D, 2: kl.DepthwiseConv2D}[r]
        return cls(g(L, "kernel_size"), strides=g(L, "strides", default=1), padding=g(L, "padding", default="valid"),
                   depth_multiplier=g(L, "depth_multiplier", default=1),
                   dilation_rate=g(L, "dilation_rate", default=1), use_bias=bias)
    if t.startswith("separableconv"):
        cls = {1: kl.SeparableConv1D, 2: kl.SeparableConv2D}[r]
        return cls(g(L, "filters"), g(L, "kernel_size"), strides=g(L, "strides", default=1),
                   padding=g(L, "padding", default="valid"), depth_multiplier=g(L, "depth_multiplier", default=1),
                   dilation_rate=g(L, "dilation_rate", default=1), use_bias=bias)
    if t.startswith("conv"):
        cls = {1: kl.Conv1D, 2: kl.Conv2D, 3: kl.Conv3D}[r]
        return cls(g(L, "filters"), g(L, "kernel_size"), strides=g(L, "strides", default=1),
                   padding=g(L, "padding", default="valid"), dilation_rate=g(L, "dilation_rate", default=1),
                   groups=g(L, "groups", default=1), use_bias=bias, activation=g(L, "activation"))
    if t.startswith("maxpooling") or t.startswith("averagepooling"):
        cls = {("max", 1): kl.MaxPooling1D, ("max", 2): kl.MaxPooling2D, ("max", 3): kl.MaxPooling3D,
               ("avg", 1): kl.AveragePooling1D, ("avg", 2): kl.AveragePooling2D,
               ("avg", 3): kl.AveragePooling3D}[("max" if "max" in t else "avg", r)]
        return cls(g(L, "pool_size"), strides=g(L, "strides"), padding=g(L, "padding", default="valid"))
    if t.startswith("global"):
        cls = {("max", 1): kl.GlobalMaxPooling1D, ("max", 2): kl.GlobalMaxPooling2D,
               ("max", 3): kl.GlobalMaxPooling3D, ("avg", 1): kl.GlobalAveragePooling1D,
               ("avg", 2): kl.GlobalAveragePooling2D, ("avg", 3): kl.GlobalAveragePooling3D}[
            ("max" if "max" in t else "avg", r)]
        return cls(keepdims=g(L, "keepdims", default=False))
    if t.startswith("zeropadding"):
        p = g(L, "padding")
        cls = {1: kl.ZeroPadding1D, 2: kl.ZeroPadding2D, 3: kl.ZeroPadding3D}[r]
        return cls(tuple(tuple(x) if isinstance(x, list) else x for x in p) if isinstance(p, list) else p)
    if t.startswith("upsampling"):
        cls = {1: kl.UpSampling1D, 2: kl.UpSampling2D, 3: kl.UpSampling3D}[r]
        sz = g(L, "size", default=2)
        return cls(tuple(sz) if isinstance(sz, list) else sz)
    if t == "flatten":
        return kl.Flatten()
    if t.startswith("dropout") or t.startswith("spatialdropout"):
        return kl.Dropout(g(L, "rate"))
    if t == "batchnormalization":
        return kl.BatchNormalization(axis=g(L, "axis", default=-1), center=g(L, "center", default=True),
                                     scale=g(L, "scale", default=True))
    if t == "layernormalization":
        return kl.LayerNormalization(axis=g(L, "axis", default=-1), center=g(L, "center", default=True),
                                     scale=g(L, "scale", default=True))
    if t == "embedding":
        return kl.Embedding(g(L, "input_dim"), g(L, "output_dim"))
    if t == "activation":
        return kl.Activation(g(L, "activation"))
    if t == "relu":
        return kl.ReLU()
    if t == "leakyrelu":
        return kl.LeakyReLU()
    if t == "elu":
        return kl.ELU()
    if t == "softmax":
        return kl.Softmax()
    if t in ("simplernn", "lstm", "gru"):
        cls = {"simplernn": kl.SimpleRNN, "lstm": kl.LSTM, "gru": kl.GRU}[t]
        kw = {}
        if t == "gru":
            kw["reset_after"] = g(L, "reset_after", default=KERAS_GRU_RESET_AFTER[0])
        return cls(g(L, "units"), use_bias=bias, return_sequences=g(L, "return_sequences", default=False), **kw)
    if t == "bidirectional":
        return kl.Bidirectional(keras_layer(g(L, "layer")), merge_mode=g(L, "merge_mode", default="concat"))
    raise ValueError("no keras builder for " + t)


KERAS_GRU_RESET_AFTER = [True]


def run_keras(req):
    keras.utils.set_random_seed(0)
    KERAS_GRU_RESET_AFTER[0] = (req.get("conventions") or {}).get("gru_reset_after", True)
    layers = [keras_layer(L) for L in req["layers"]]
    for L, kl in zip(req["layers"], layers):
        if g(L, "trainable", default=True) is False:
            kl.trainable = False
    dtype = "int32" if norm(g(req["layers"][0], "type")) == "embedding" else "float32"
    model = keras.Sequential([keras.Input(tuple(req["input_shape"]), dtype=dtype)] + layers)
    out = []
    for kl in model.layers:
        tr = sum(int(np.prod(w.shape)) for w in kl.trainable_weights)
        nt = sum(int(np.prod(w.shape)) for w in kl.non_trainable_weights)
        assert tr + nt == kl.count_params()
        out.append({"output_shape": [int(d) for d in kl.output.shape[1:]], "params": tr + nt, "trainable": tr,
                    "non_trainable": nt, "weights": [list(w.shape) for w in kl.weights]})
    return out


# ----------------------------------------------------------------------------- cases

CASES = []


def case(name, fw, req, rf=False, note=None):
    CASES.append({"name": name, "framework": fw, "request": req, "rf": rf, "note": note})


def T(input_shape, layers, conventions=None):
    req = {"input_shape": list(input_shape), "layout": "CHW", "layers": layers}
    if conventions:
        req["conventions"] = conventions
    return req


def K(input_shape, layers, conventions=None, layout="HWC"):
    conv = {"framework": "keras"}
    conv.update(conventions or {})
    return {"input_shape": list(input_shape), "layout": layout, "layers": layers, "conventions": conv}


def exam_cases():
    # TUM P4 b: 5 filters, k7, s3, p1 on 26x26x26 -> 5x8x8.
    case("exam_tum_p4b_conv_output", "pytorch",
         T([26, 26, 26], [{"type": "Conv2d", "in_channels": 26, "out_channels": 5, "kernel_size": 7, "stride": 3,
                            "padding": 1}]))
    # TUM P4 c: 4 filters k5 on RGB: weight shape.
    case("exam_tum_p4c_weight_shape_torch", "pytorch",
         T([3, 32, 32], [{"type": "Conv2d", "out_channels": 4, "kernel_size": 5}]))
    case("exam_tum_p4c_weight_shape_keras", "keras",
         K([32, 32, 3], [{"type": "Conv2D", "filters": 4, "kernel_size": 5}]))
    # TUM P4 d: three 3x3 convs stride 1 no padding on 224x224 grayscale: RF 7.
    case("exam_tum_p4d_three_3x3_rf", "pytorch",
         T([1, 224, 224], [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3}] * 3), rf=True)
    # TUM P4 e: 1x1 conv has RF 1; a fully connected layer sees everything.
    case("exam_tum_p4e_1x1_and_fc_rf", "pytorch",
         T([1, 16, 16], [{"type": "Conv2d", "out_channels": 2, "kernel_size": 1}, {"type": "Flatten"},
                         {"type": "Linear", "out_features": 3}]), rf=True)
    lenet = [
        {"type": "Conv2d", "out_channels": 6, "kernel_size": 5, "name": "conv1"},
        {"type": "MaxPool2d", "kernel_size": 2, "name": "maxpool1"},
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 5, "name": "conv2"},
        {"type": "MaxPool2d", "kernel_size": 2, "name": "maxpool2"},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 120, "name": "f1"},
        {"type": "ReLU"},
        {"type": "Linear", "out_features": 84, "name": "f2"},
        {"type": "ReLU"},
        {"type": "Linear", "out_features": 10},
    ]
    case("exam_tum_p7_lenet_torch", "pytorch", T([1, 32, 32], lenet), rf=True)
    case("exam_tum_p7_lenet_letters_26", "pytorch", T([1, 32, 32], lenet[:-1] + [{"type": "Linear", "out_features": 26}]))
    case("exam_tum_p7c_lenet_68_extra_conv_pool", "pytorch",
         T([1, 68, 68], [{"type": "Conv2d", "out_channels": 1, "kernel_size": 5},
                         {"type": "MaxPool2d", "kernel_size": 2}] + lenet), rf=True)
    case("exam_tum_p7c_lenet_68_f1_3136", "pytorch",
         T([1, 68, 68], lenet), rf=True)
    case("exam_lenet_keras", "keras",
         K([32, 32, 1], [{"type": "Conv2D", "filters": 6, "kernel_size": 5, "activation": "tanh"},
                         {"type": "MaxPooling2D", "pool_size": 2},
                         {"type": "Conv2D", "filters": 16, "kernel_size": 5, "activation": "tanh"},
                         {"type": "MaxPooling2D", "pool_size": 2}, {"type": "Flatten"},
                         {"type": "Dense", "units": 120, "activation": "tanh"},
                         {"type": "Dense", "units": 84, "activation": "tanh"},
                         {"type": "Dense", "units": 10, "activation": "softmax"}]))
    # TUM P3 Cityscapes: conv1 50x32x32 from 64x64 RGB, k4 s2 p1; fc1 1600 -> 640.
    city = [
        {"type": "Conv2d", "out_channels": 50, "kernel_size": 4, "stride": 2, "padding": 1, "name": "conv1"},
        {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "name": "maxpool1"},
        {"type": "Conv2d", "out_channels": 100, "kernel_size": 4, "stride": 2, "padding": 1, "name": "conv2"},
        {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "name": "maxpool2"},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 640, "name": "fc1"},
    ]
    case("exam_tum_p3_cityscapes_encoder", "pytorch", T([3, 64, 64], city), rf=True)
    case("exam_tum_p3_cityscapes_decoder", "pytorch",
         T([40, 4, 4], [{"type": "ConvTranspose2d", "out_channels": c, "kernel_size": 4, "stride": 2, "padding": 1}
                        for c in (30, 20, 10, 5)]))
    case("exam_tum_p3_cityscapes_30_classes", "pytorch",
         T([40, 4, 4], [{"type": "ConvTranspose2d", "out_channels": c, "kernel_size": 4, "stride": 2, "padding": 1}
                        for c in (30, 20, 10, 30)]))
    # TUM P5: 1x1 conv, no bias, then maxpool k2 s2 p1 on (3, 2, 2).
    case("exam_tum_p5_1x1_conv_maxpool_pad", "pytorch",
         T([3, 2, 2], [{"type": "Conv2d", "out_channels": 1, "kernel_size": 1, "bias": False},
                       {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "padding": 1}]), rf=True)
    # TUM P7 (AlexNet-like): 256x256 RGB, conv 11 s4 p5 (96), maxpool 3 s2 p1, conv 5 p2 (256).
    case("exam_tum_alexnet_like_rf_11_19_51", "pytorch",
         T([3, 256, 256], [{"type": "Conv2d", "out_channels": 96, "kernel_size": 11, "stride": 4, "padding": 5},
                           {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
                           {"type": "Conv2d", "out_channels": 256, "kernel_size": 5, "padding": 2}]), rf=True)
    # BITS EC3 1a-c: 256x256x3, conv 64 5x5, conv 128 5x5, maxpool 2x2.
    bits = [{"type": "Conv2D", "filters": 64, "kernel_size": [5, 5], "activation": "relu"},
            {"type": "Conv2D", "filters": 128, "kernel_size": [5, 5], "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": [2, 2]}]
    case("exam_bits_ec3_1a_cnn_256", "keras", K([256, 256, 3], bits))
    case("exam_bits_ec3_1b_cnn_128_same_params", "keras", K([128, 128, 3], bits))
    case("exam_bits_ec3_1d_with_dense_binary", "keras",
         K([64, 64, 3], bits + [{"type": "Flatten"}, {"type": "Dense", "units": 64, "activation": "relu"},
                                {"type": "Dense", "units": 1, "activation": "sigmoid"}]))
    # BITS EC3 2a: LSTM on 4 features, hidden 3, one output.
    case("exam_bits_ec3_2a_lstm_keras", "keras",
         K([5, 4], [{"type": "LSTM", "units": 3}, {"type": "Dense", "units": 1}]))
    case("exam_bits_ec3_2a_lstm_torch", "pytorch",
         T([5, 4], [{"type": "LSTM", "hidden_size": 3, "return_sequences": False}, {"type": "Linear", "out_features": 1}]))
    # BITS EC3 2b: RNN with two tanh units on 2 features, one sigmoid output.
    case("exam_bits_ec3_2b_simple_rnn_keras", "keras",
         K([1, 2], [{"type": "SimpleRNN", "units": 2}, {"type": "Dense", "units": 1, "activation": "sigmoid"}]))
    case("exam_bits_ec3_2b_simple_rnn_torch", "pytorch",
         T([1, 2], [{"type": "RNN", "hidden_size": 2, "return_sequences": False},
                    {"type": "Linear", "out_features": 1}, {"type": "Sigmoid"}]))
    # BITS EC3 3a: 1D CNN, length 100, 64 filters of size 3, batch norm, dense 128.
    for pad in ("same", "valid"):
        case("exam_bits_ec3_3a_conv1d_bn_dense_" + pad, "keras",
             K([100, 1], [{"type": "Conv1D", "filters": 64, "kernel_size": 3, "padding": pad},
                          {"type": "BatchNormalization"}, {"type": "Flatten"}, {"type": "Dense", "units": 128}],
               layout="LC"))
    case("exam_bits_ec3_3a_conv1d_bn_dense_no_flatten", "keras",
         K([100, 1], [{"type": "Conv1D", "filters": 64, "kernel_size": 3},
                      {"type": "BatchNormalization"}, {"type": "Dense", "units": 128}], layout="LC"))
    case("exam_bits_ec3_3a_conv1d_bn_torch", "pytorch",
         T([1, 100], [{"type": "Conv1d", "out_channels": 64, "kernel_size": 3, "padding": "same"},
                      {"type": "BatchNorm1d", "num_features": 64}, {"type": "Flatten"},
                      {"type": "Linear", "out_features": 128}]))
    # BITS EC3 3b: DNN 50 -> 64 -> 128 -> 256 -> 1.
    dnn = [{"type": "Dense", "units": u, "activation": "relu"} for u in (64, 128, 256)] + [{"type": "Dense", "units": 1}]
    case("exam_bits_ec3_3b_dnn_keras", "keras", K([50], dnn))
    case("exam_bits_ec3_3b_dnn_torch", "pytorch",
         T([50], [{"type": "Linear", "out_features": u} for u in (64, 128, 256, 1)]))
    # BITS EC2 1: Keras DNN on a flattened 256*256*3 image.
    units = [1048, 512, None, 256, 128, 64, None, 32, 16, 8]
    layers = []
    for u, rate in zip(units, [None, None, 0.4, None, None, None, 0.6, None, None, None]):
        if u is None:
            layers.append({"type": "Dropout", "rate": rate})
        else:
            layers.append({"type": "Dense", "units": u, "activation": "softmax" if u == 8 else "relu"})
    case("exam_bits_ec2_1_keras_dnn_dropout", "keras", K([256 * 256 * 3], layers))
    # BITS EC2 3c: 7 hidden layers of 8 units, 30 inputs, binary output.
    case("exam_bits_ec2_3c_fc_7x8", "keras",
         K([30], [{"type": "Dense", "units": 8, "activation": "relu"}] * 7 + [{"type": "Dense", "units": 1,
                                                                                  "activation": "sigmoid"}]))
    # VGG-16 and AlexNet (torchvision layouts).
    vgg = []
    for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for c in block:
            vgg += [{"type": "Conv2d", "out_channels": c, "kernel_size": 3, "padding": 1}, {"type": "ReLU"}]
        vgg.append({"type": "MaxPool2d", "kernel_size": 2, "stride": 2})
    vgg_head = [{"type": "Flatten"}, {"type": "Linear", "out_features": 4096}, {"type": "ReLU"},
                {"type": "Dropout", "p": 0.5}, {"type": "Linear", "out_features": 4096}, {"type": "ReLU"},
                {"type": "Dropout", "p": 0.5}, {"type": "Linear", "out_features": 1000}]
    case("vgg16_torch_138357544", "pytorch", T([3, 224, 224], vgg + vgg_head))
    kvgg = []
    for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for c in block:
            kvgg.append({"type": "Conv2D", "filters": c, "kernel_size": 3, "padding": "same", "activation": "relu"})
        kvgg.append({"type": "MaxPooling2D", "pool_size": 2, "strides": 2})
    kvgg += [{"type": "Flatten"}, {"type": "Dense", "units": 4096, "activation": "relu"},
             {"type": "Dense", "units": 4096, "activation": "relu"}, {"type": "Dense", "units": 1000,
                                                                      "activation": "softmax"}]
    case("vgg16_keras", "keras", K([224, 224, 3], kvgg))
    case("vgg16_features_rf_torch", "pytorch", T([3, 224, 224], vgg[:17]), rf=True)
    alex = [{"type": "Conv2d", "out_channels": 64, "kernel_size": 11, "stride": 4, "padding": 2}, {"type": "ReLU"},
            {"type": "MaxPool2d", "kernel_size": 3, "stride": 2},
            {"type": "Conv2d", "out_channels": 192, "kernel_size": 5, "padding": 2}, {"type": "ReLU"},
            {"type": "MaxPool2d", "kernel_size": 3, "stride": 2},
            {"type": "Conv2d", "out_channels": 384, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
            {"type": "Conv2d", "out_channels": 256, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
            {"type": "Conv2d", "out_channels": 256, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
            {"type": "MaxPool2d", "kernel_size": 3, "stride": 2},
            {"type": "AdaptiveAvgPool2d", "output_size": [6, 6]}, {"type": "Flatten"},
            {"type": "Dropout"}, {"type": "Linear", "out_features": 4096}, {"type": "ReLU"},
            {"type": "Dropout"}, {"type": "Linear", "out_features": 4096}, {"type": "ReLU"},
            {"type": "Linear", "out_features": 1000}]
    case("alexnet_torchvision_61100840", "pytorch", T([3, 224, 224], alex))
    case("alexnet_features_rf", "pytorch", T([3, 224, 224], alex[:13]), rf=True)


def sweep_cases():
    # Conv2d geometry sweep (PyTorch).
    i = 0
    for n in (7, 10, 13, 26, 32):
        for k in (1, 2, 3, 5, 7):
            for s in (1, 2, 3):
                for p in (0, 1, 3):
                    for d in (1, 2):
                        i += 1
                        if i % 5 != 0:
                            continue
                        case(f"torch_conv2d_n{n}_k{k}_s{s}_p{p}_d{d}", "pytorch",
                             T([2, n, n], [{"type": "Conv2d", "out_channels": 3, "kernel_size": k, "stride": s,
                                            "padding": p, "dilation": d}]), rf=True)
    # Rectangular kernels/strides/paddings.
    for (hw, k, s, p) in [((20, 11), (3, 5), (2, 1), (1, 2)), ((9, 17), (1, 3), (1, 2), (0, 1)),
                          ((15, 15), (4, 2), (3, 2), (2, 0)), ((31, 8), (7, 3), (2, 3), (3, 1))]:
        case(f"torch_conv2d_rect_{hw[0]}x{hw[1]}_k{k[0]}{k[1]}", "pytorch",
             T([3] + list(hw), [{"type": "conv2d", "out_channels": 4, "kernel_size": list(k), "stride": list(s),
                                 "padding": list(p)}]), rf=True)
    # Asymmetric padding pairs.
    for pairs in ([[0, 1], [2, 0]], [[1, 2], [1, 2]], [[3, 0], [0, 3]]):
        case(f"torch_conv2d_asym_pad_{pairs[0][0]}{pairs[0][1]}{pairs[1][0]}{pairs[1][1]}", "pytorch",
             T([1, 12, 12], [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": pairs}]),
             rf=True)
    # Conv1d / Conv3d.
    for (n, k, s, p, d) in [(100, 3, 1, 0, 1), (100, 3, 1, 1, 1), (50, 5, 2, 2, 1), (17, 4, 3, 1, 2), (64, 7, 4, 3, 1),
                            (9, 9, 1, 0, 1)]:
        case(f"torch_conv1d_n{n}_k{k}_s{s}_p{p}_d{d}", "pytorch",
             T([4, n], [{"type": "Conv1d", "in_channels": 4, "out_channels": 8, "kernel_size": k, "stride": s,
                         "padding": p, "dilation": d}]), rf=True)
    for (n, k, s, p) in [(8, 3, 1, 0), (8, 3, 2, 1), (11, 5, 2, 2), (6, 2, 2, 0)]:
        case(f"torch_conv3d_n{n}_k{k}_s{s}_p{p}", "pytorch",
             T([2, n, n, n], [{"type": "Conv3d", "out_channels": 3, "kernel_size": k, "stride": s, "padding": p}]),
             rf=True)
    # Groups.
    for (cin, cout, gr) in [(4, 8, 2), (6, 6, 3), (8, 16, 8), (12, 4, 4)]:
        case(f"torch_conv2d_groups_{cin}_{cout}_{gr}", "pytorch",
             T([cin, 9, 9], [{"type": "Conv2d", "out_channels": cout, "kernel_size": 3, "groups": gr}]))
    # padding='same' in PyTorch (stride 1), odd and even kernels, dilation.
    for (k, d) in [(3, 1), (4, 1), (5, 2), (2, 3), (6, 1)]:
        case(f"torch_conv2d_same_k{k}_d{d}", "pytorch",
             T([2, 11, 11], [{"type": "Conv2d", "out_channels": 2, "kernel_size": k, "padding": "same",
                              "dilation": d}]), rf=True)
    case("torch_conv2d_valid_string", "pytorch",
         T([2, 11, 11], [{"type": "Conv2d", "out_channels": 2, "kernel_size": 4, "padding": "valid"}]))
    # No bias.
    case("torch_conv2d_no_bias", "pytorch",
         T([3, 8, 8], [{"type": "Conv2d", "out_channels": 5, "kernel_size": 3, "bias": False},
                       {"type": "Linear", "out_features": 2, "bias": False}]))
    # Depthwise (groups = in) and separable.
    for (cin, mult, k) in [(3, 1, 3), (4, 2, 5), (8, 3, 3)]:
        case(f"torch_depthwise_{cin}_x{mult}_k{k}", "pytorch",
             T([cin, 12, 12], [{"type": "DepthwiseConv2D", "depth_multiplier": mult, "kernel_size": k}]))
        case(f"torch_separable_{cin}_x{mult}_k{k}", "pytorch",
             T([cin, 12, 12], [{"type": "SeparableConv2D", "filters": 7, "depth_multiplier": mult,
                                "kernel_size": k, "padding": 1}]))
    # Transposed convolutions.
    for (n, k, s, p, op, d) in [(4, 4, 2, 1, 0, 1), (4, 3, 2, 1, 1, 1), (7, 3, 1, 0, 0, 1), (5, 5, 3, 2, 2, 1),
                                (3, 2, 2, 0, 0, 1), (6, 3, 2, 0, 0, 2), (6, 3, 1, 1, 1, 2), (8, 1, 1, 0, 0, 1),
                                (2, 7, 4, 3, 3, 1), (10, 4, 2, 3, 1, 1)]:
        case(f"torch_convtranspose2d_n{n}_k{k}_s{s}_p{p}_op{op}_d{d}", "pytorch",
             T([3, n, n], [{"type": "ConvTranspose2d", "in_channels": 3, "out_channels": 2, "kernel_size": k,
                            "stride": s, "padding": p, "output_padding": op, "dilation": d}]))
    for (n, k, s, p, op) in [(10, 3, 2, 1, 1), (5, 4, 4, 0, 3)]:
        case(f"torch_convtranspose1d_n{n}_k{k}_s{s}_p{p}_op{op}", "pytorch",
             T([2, n], [{"type": "ConvTranspose1d", "out_channels": 4, "kernel_size": k, "stride": s, "padding": p,
                         "output_padding": op}]))
    case("torch_convtranspose3d", "pytorch",
         T([2, 3, 4, 5], [{"type": "ConvTranspose3d", "out_channels": 2, "kernel_size": [2, 3, 3], "stride": 2,
                           "padding": [0, 1, 1]}]))
    case("torch_convtranspose2d_groups", "pytorch",
         T([4, 5, 5], [{"type": "ConvTranspose2d", "out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 2}]))
    # Pooling with ceil_mode, padding, dilation.
    j = 0
    for n in (5, 6, 7, 10, 13):
        for k in (2, 3):
            for s in (None, 1, 2, 3):
                for p in (0, 1):
                    for ceil in (False, True):
                        j += 1
                        if j % 3 != 0 or (p > k // 2):
                            continue
                        for op in ("Max", "Avg"):
                            L = {"type": op + "Pool2d", "kernel_size": k, "padding": p, "ceil_mode": ceil}
                            if s is not None:
                                L["stride"] = s
                            case(f"torch_{op.lower()}pool2d_n{n}_k{k}_s{s}_p{p}_ceil{int(ceil)}", "pytorch",
                                 T([1, n, n], [L]), rf=True)
    for (n, k, s, p, d, ceil) in [(10, 3, 1, 1, 2, False), (11, 2, 2, 1, 2, True), (9, 3, 2, 0, 3, False)]:
        case(f"torch_maxpool2d_dilated_n{n}_k{k}_s{s}_p{p}_d{d}", "pytorch",
             T([1, n, n], [{"type": "MaxPool2d", "kernel_size": k, "stride": s, "padding": p, "dilation": d,
                            "ceil_mode": ceil}]))
    for (n, k, s, p, ceil) in [(9, 3, 2, 1, True), (16, 4, 4, 2, False), (7, 2, 3, 0, True)]:
        case(f"torch_pool1d_n{n}_k{k}_s{s}_p{p}", "pytorch",
             T([3, n], [{"type": "MaxPool1d", "kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil},
                        {"type": "AvgPool1d", "kernel_size": 1}]), rf=True)
    case("torch_pool3d", "pytorch",
         T([2, 9, 8, 7], [{"type": "MaxPool3d", "kernel_size": 2, "ceil_mode": True},
                          {"type": "AvgPool3d", "kernel_size": [1, 2, 2], "stride": 1}]))
    case("torch_avgpool_count_include_pad_false", "pytorch",
         T([1, 9, 9], [{"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1,
                        "count_include_pad": False}]))
    # Adaptive / global pooling.
    for (hw, o) in [((12, 12), [3, 3]), ((13, 7), [4, 2]), ((7, 7), [1, 1]), ((5, 9), [5, 3])]:
        case(f"torch_adaptive_avg_{hw[0]}x{hw[1]}_to_{o[0]}x{o[1]}", "pytorch",
             T([2] + list(hw), [{"type": "AdaptiveAvgPool2d", "output_size": o}, {"type": "Flatten"},
                                {"type": "Linear", "out_features": 3}]))
    case("torch_adaptive_max_1d", "pytorch", T([3, 20], [{"type": "AdaptiveMaxPool1d", "output_size": 4}]))
    case("torch_global_avg_keepdims", "pytorch",
         T([3, 6, 6], [{"type": "GlobalAveragePooling2D", "keepdims": True}]), rf=True)
    case("torch_global_max", "pytorch",
         T([3, 6, 6], [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3},
                       {"type": "GlobalMaxPooling2D"}, {"type": "Linear", "out_features": 2}]), rf=True)
    # BatchNorm / LayerNorm / Embedding / Flatten variants.
    for (shape, ty) in [([5], "BatchNorm1d"), ([4, 10], "BatchNorm1d"), ([3, 6, 6], "BatchNorm2d"),
                        ([2, 3, 4, 5], "BatchNorm3d")]:
        case(f"torch_{ty.lower()}_{len(shape)}", "pytorch", T(shape, [{"type": ty, "num_features": shape[0]}]))
        case(f"torch_{ty.lower()}_{len(shape)}_count_stats", "pytorch",
             T(shape, [{"type": ty}], {"count_bn_running_stats": True}))
    case("torch_batchnorm_affine_false", "pytorch",
         T([3, 6, 6], [{"type": "BatchNorm2d", "affine": False}], {"count_bn_running_stats": True}))
    case("torch_batchnorm_no_running_stats", "pytorch",
         T([3, 6, 6], [{"type": "BatchNorm2d", "track_running_stats": False}], {"count_bn_running_stats": True}))
    for ns in ([8], [4, 8], [3, 4, 8]):
        case(f"torch_layernorm_{len(ns)}", "pytorch", T([3, 4, 8], [{"type": "LayerNorm", "normalized_shape": ns}]))
    case("torch_layernorm_no_affine", "pytorch",
         T([5, 6], [{"type": "LayerNorm", "normalized_shape": [6], "elementwise_affine": False}]))
    case("torch_layernorm_no_bias", "pytorch",
         T([5, 6], [{"type": "LayerNorm", "normalized_shape": [6], "bias": False}]))
    case("torch_embedding_lstm", "pytorch",
         T([12], [{"type": "Embedding", "num_embeddings": 1000, "embedding_dim": 16},
                  {"type": "LSTM", "input_size": 16, "hidden_size": 32, "return_sequences": False},
                  {"type": "Linear", "out_features": 5}]))
    case("torch_embedding_only", "pytorch", T([7], [{"type": "Embedding", "num_embeddings": 50, "embedding_dim": 3}]))
    for (sd, ed) in [(1, -1), (2, -1), (1, 2), (2, 3)]:
        case(f"torch_flatten_{sd}_{ed}", "pytorch",
             T([3, 4, 5], [{"type": "Flatten", "start_dim": sd, "end_dim": ed}]))
    # Linear on rank > 1 (last axis).
    case("torch_linear_on_rank3_last_axis", "pytorch", T([3, 4, 5], [{"type": "Linear", "out_features": 7}]),
         rf=True)
    case("torch_linear_on_sequence", "pytorch",
         T([10, 6], [{"type": "Linear", "in_features": 6, "out_features": 2}, {"type": "Tanh"}]))
    # Activations keep shapes.
    case("torch_activations", "pytorch",
         T([4, 5], [{"type": t} for t in ("ReLU", "Sigmoid", "Tanh", "GELU", "ELU", "LeakyReLU", "Softmax",
                                           "SiLU", "ReLU6", "Identity")]))
    # Recurrent layers (PyTorch: two bias vectors).
    for cell in ("RNN", "LSTM", "GRU"):
        for (f, h, nl, bi, bias, seq) in [(3, 4, 1, False, True, True), (3, 4, 1, False, True, False),
                                          (10, 8, 2, False, True, True), (5, 6, 1, True, True, True),
                                          (5, 6, 3, True, True, False), (2, 3, 1, False, False, True),
                                          (7, 1, 2, True, False, True)]:
            case(f"torch_{cell.lower()}_in{f}_h{h}_l{nl}_bi{int(bi)}_b{int(bias)}_seq{int(seq)}", "pytorch",
                 T([6, f], [{"type": cell, "input_size": f, "hidden_size": h, "num_layers": nl,
                             "bidirectional": bi, "bias": bias, "return_sequences": seq}]))
    # Zero padding and upsampling.
    for p in (1, [1, 2, 0, 3], [0, 0, 2, 2]):
        case(f"torch_zeropad2d_{p if isinstance(p, int) else ''.join(map(str, p))}", "pytorch",
             T([2, 7, 9], [{"type": "ZeroPad2d", "padding": p},
                           {"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2}]), rf=True)
    case("torch_zeropad1d", "pytorch", T([2, 9], [{"type": "ZeroPad1d", "padding": [3, 1]},
                                                  {"type": "MaxPool1d", "kernel_size": 2}]), rf=True)
    case("torch_resnet_stem_zeropad", "pytorch",
         T([3, 224, 224], [{"type": "ZeroPad2d", "padding": 3},
                           {"type": "Conv2d", "out_channels": 64, "kernel_size": 7, "stride": 2, "bias": False},
                           {"type": "BatchNorm2d"}, {"type": "ReLU"},
                           {"type": "ZeroPad2d", "padding": 1}, {"type": "MaxPool2d", "kernel_size": 3, "stride": 2}]),
         rf=True)
    for (sf, size, mode) in [(2, None, "nearest"), ([2, 3], None, "nearest"), (None, [9, 4], "nearest"),
                             (2, None, "bilinear")]:
        L = {"type": "Upsample", "mode": mode}
        if sf is not None:
            L["scale_factor"] = sf
        if size is not None:
            L["size"] = size
        case(f"torch_upsample_{sf}_{size}_{mode}".replace(" ", ""), "pytorch",
             T([3, 5, 6], [L, {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1}]))
    case("torch_upsample_1d", "pytorch", T([2, 7], [{"type": "Upsample", "scale_factor": 3}]))
    # Convention: pooling stride defaults to 1 instead of the window.
    case("torch_pool_stride_default_one", "pytorch",
         T([1, 9, 9], [{"type": "MaxPool2d", "kernel_size": 3}, {"type": "AvgPool2d", "kernel_size": 2}],
           {"pool_stride_default": "one"}), rf=True)
    # Frozen layer.
    case("torch_frozen_conv", "pytorch",
         T([3, 8, 8], [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "trainable": False},
                       {"type": "Flatten"}, {"type": "Linear", "out_features": 2}]))
    # Receptive-field stacks.
    stacks = [
        [(3, 1, 1, 1)] * 5,
        [(3, 2, 1, 1), (3, 2, 1, 1), (3, 2, 1, 1)],
        [(7, 2, 3, 1), ("pool", 3, 2, 1), (3, 1, 1, 1), (3, 1, 1, 1)],
        [(3, 1, 0, 2), (3, 1, 0, 4)],
        [(5, 1, 2, 1), ("pool", 2, 2, 0), (5, 1, 2, 1), ("pool", 2, 2, 0), (3, 1, 1, 1)],
        [(4, 2, 1, 1), (4, 2, 1, 1), (4, 2, 1, 1)],
        [(1, 1, 0, 1), (3, 3, 0, 1), (2, 1, 0, 1)],
        [(3, 1, 1, 3), ("pool", 3, 1, 1), (3, 2, 0, 1)],
        [(11, 4, 2, 1), ("pool", 3, 2, 0), (5, 1, 2, 1), ("pool", 3, 2, 0), (3, 1, 1, 1)],
        [(2, 2, 0, 1), (2, 2, 0, 1), (2, 2, 0, 1), (2, 2, 0, 1)],
    ]
    for si, st in enumerate(stacks):
        layers = []
        for spec in st:
            if spec[0] == "pool":
                layers.append({"type": "MaxPool2d", "kernel_size": spec[1], "stride": spec[2], "padding": spec[3]})
            else:
                k, s, p, d = spec
                layers.append({"type": "Conv2d", "out_channels": 2, "kernel_size": k, "stride": s, "padding": p,
                               "dilation": d})
        case(f"torch_rf_stack_{si}", "pytorch", T([1, 96, 96], layers), rf=True)
    case("torch_rf_1d_stack", "pytorch",
         T([1, 64], [{"type": "Conv1d", "out_channels": 2, "kernel_size": 5, "stride": 2, "padding": 2},
                     {"type": "MaxPool1d", "kernel_size": 3, "stride": 2},
                     {"type": "Conv1d", "out_channels": 2, "kernel_size": 3, "dilation": 2}]), rf=True)


def keras_cases():
    i = 0
    for n in (7, 10, 13, 28):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for pad in ("valid", "same"):
                    for d in (1, 2):
                        i += 1
                        if i % 4 != 0 or (d > 1 and s > 1):
                            continue
                        case(f"keras_conv2d_n{n}_k{k}_s{s}_{pad}_d{d}", "keras",
                             K([n, n, 2], [{"type": "Conv2D", "filters": 3, "kernel_size": k, "strides": s,
                                            "padding": pad, "dilation_rate": d}]))
    for (n, k, s, pad) in [(100, 3, 1, "same"), (100, 5, 2, "same"), (37, 4, 3, "valid"), (20, 20, 1, "valid")]:
        case(f"keras_conv1d_n{n}_k{k}_s{s}_{pad}", "keras",
             K([n, 3], [{"type": "Conv1D", "filters": 6, "kernel_size": k, "strides": s, "padding": pad}],
               layout="LC"))
    for (k, d, st) in [(3, 1, 1), (3, 4, 1), (5, 2, 1), (4, 1, 2)]:
        case(f"keras_conv1d_causal_k{k}_d{d}_s{st}", "keras",
             K([50, 2], [{"type": "Conv1D", "filters": 4, "kernel_size": k, "dilation_rate": d, "strides": st,
                          "padding": "causal"}], layout="LC"))
    case("keras_conv1d_causal_like_dilated", "keras",
         K([50, 2], [{"type": "Conv1D", "filters": 4, "kernel_size": 3, "dilation_rate": 4}], layout="LC"))
    case("keras_conv3d", "keras",
         K([8, 9, 10, 2], [{"type": "Conv3D", "filters": 3, "kernel_size": [3, 2, 3], "strides": [1, 2, 2],
                            "padding": "same"}], layout="DHWC"))
    case("keras_conv2d_groups", "keras",
         K([9, 9, 6], [{"type": "Conv2D", "filters": 9, "kernel_size": 3, "groups": 3}]))
    case("keras_conv2d_no_bias_rect", "keras",
         K([15, 9, 3], [{"type": "Conv2D", "filters": 4, "kernel_size": [5, 3], "strides": [2, 1], "use_bias": False}]))
    for (n, k, s, pad, op) in [(4, 4, 2, "same", None), (4, 3, 2, "valid", None), (5, 2, 3, "valid", None),
                               (5, 5, 2, "same", None), (6, 3, 2, "same", 1), (6, 3, 2, "valid", 1),
                               (3, 4, 2, "valid", 0), (7, 1, 1, "valid", None), (4, 3, 3, "same", 2),
                               (3, 2, 4, "valid", None)]:
        L = {"type": "Conv2DTranspose", "filters": 2, "kernel_size": k, "strides": s, "padding": pad}
        if op is not None:
            L["output_padding"] = op
        case(f"keras_conv2dtranspose_n{n}_k{k}_s{s}_{pad}_op{op}", "keras", K([n, n, 3], [L]))
    case("keras_conv1dtranspose", "keras",
         K([10, 3], [{"type": "Conv1DTranspose", "filters": 5, "kernel_size": 3, "strides": 2, "padding": "same"}],
           layout="LC"))
    for (mult, k, pad, s) in [(1, 3, "valid", 1), (2, 3, "same", 2), (3, 5, "same", 1)]:
        case(f"keras_depthwise_x{mult}_k{k}_{pad}_s{s}", "keras",
             K([12, 12, 4], [{"type": "DepthwiseConv2D", "kernel_size": k, "depth_multiplier": mult, "padding": pad,
                              "strides": s}]))
        case(f"keras_separable_x{mult}_k{k}_{pad}_s{s}", "keras",
             K([12, 12, 4], [{"type": "SeparableConv2D", "filters": 8, "kernel_size": k, "depth_multiplier": mult,
                              "padding": pad, "strides": s}]))
    case("keras_separable1d", "keras",
         K([20, 3], [{"type": "SeparableConv1D", "filters": 5, "kernel_size": 4}], layout="LC"))
    for (n, k, s, pad) in [(7, 2, None, "valid"), (7, 2, None, "same"), (10, 3, 2, "same"), (10, 3, 1, "valid"),
                           (9, 4, 3, "same"), (5, 5, None, "valid")]:
        for op in ("MaxPooling2D", "AveragePooling2D"):
            L = {"type": op, "pool_size": k, "padding": pad}
            if s is not None:
                L["strides"] = s
            case(f"keras_{op.lower()}_n{n}_k{k}_s{s}_{pad}", "keras", K([n, n, 2], [L]))
    case("keras_pool1d_3d", "keras",
         K([9, 8, 7, 2], [{"type": "MaxPooling3D", "pool_size": 2, "padding": "same"},
                          {"type": "AveragePooling3D", "pool_size": [1, 2, 2]}], layout="DHWC"))
    case("keras_pool1d", "keras", K([11, 3], [{"type": "MaxPooling1D", "pool_size": 3}], layout="LC"))
    for keep in (False, True):
        case(f"keras_global_avg_keep{int(keep)}", "keras",
             K([6, 6, 3], [{"type": "GlobalAveragePooling2D", "keepdims": keep}]))
        case(f"keras_global_max1d_keep{int(keep)}", "keras",
             K([6, 3], [{"type": "GlobalMaxPooling1D", "keepdims": keep}], layout="LC"))
    case("keras_batchnorm_dense", "keras", K([10], [{"type": "Dense", "units": 4}, {"type": "BatchNormalization"}]))
    case("keras_batchnorm_image", "keras",
         K([8, 8, 3], [{"type": "Conv2D", "filters": 16, "kernel_size": 3}, {"type": "BatchNormalization"}]))
    case("keras_batchnorm_no_scale", "keras", K([8, 5], [{"type": "BatchNormalization", "scale": False}], layout="LC"))
    case("keras_batchnorm_axis1", "keras", K([4, 7], [{"type": "BatchNormalization", "axis": 1}], layout="LC"))
    case("keras_layernorm", "keras", K([6, 10], [{"type": "LayerNormalization"}], layout="LC"))
    case("keras_layernorm_axes", "keras", K([3, 4, 5], [{"type": "LayerNormalization", "axis": [-2, -1]}]))
    case("keras_layernorm_no_center", "keras",
         K([6, 10], [{"type": "LayerNormalization", "center": False}], layout="LC"))
    case("keras_embedding_gru", "keras",
         K([20], [{"type": "Embedding", "input_dim": 5000, "output_dim": 32}, {"type": "GRU", "units": 16},
                  {"type": "Dense", "units": 1, "activation": "sigmoid"}]))
    case("keras_embedding_flatten", "keras",
         K([8], [{"type": "Embedding", "input_dim": 100, "output_dim": 4}, {"type": "Flatten"},
                 {"type": "Dense", "units": 2}]))
    case("keras_dense_on_rank3", "keras", K([4, 5, 6], [{"type": "Dense", "units": 3}]))
    case("keras_dense_no_bias", "keras", K([12], [{"type": "Dense", "units": 5, "use_bias": False}]))
    case("keras_activations", "keras",
         K([4, 5], [{"type": "Activation", "activation": a} for a in ("relu", "sigmoid", "tanh", "softmax", "gelu",
                                                                      "elu", "selu", "softplus", "swish")]
           + [{"type": "ReLU"}, {"type": "LeakyReLU"}, {"type": "ELU"}, {"type": "Softmax"}], layout="LC"))
    for cell in ("SimpleRNN", "LSTM", "GRU"):
        for (f, h, seq, bias, ra) in [(3, 4, False, True, None), (3, 4, True, True, None), (8, 16, False, False, None),
                                      (1, 1, False, True, None), (5, 7, True, True, False)]:
            if ra is not None and cell != "GRU":
                continue
            L = {"type": cell, "units": h, "return_sequences": seq, "use_bias": bias}
            if ra is not None:
                L["reset_after"] = ra
            case(f"keras_{cell.lower()}_in{f}_h{h}_seq{int(seq)}_b{int(bias)}_ra{ra}", "keras",
                 K([9, f], [L], layout="LC"))
    case("keras_gru_reset_after_false_convention", "keras",
         K([9, 4], [{"type": "GRU", "units": 5}], {"gru_reset_after": False}, layout="LC"))
    for cell in ("LSTM", "GRU", "SimpleRNN"):
        for mm in ("concat", "sum", "ave"):
            case(f"keras_bidirectional_{cell.lower()}_{mm}", "keras",
                 K([9, 4], [{"type": "Bidirectional", "merge_mode": mm,
                             "layer": {"type": cell, "units": 6, "return_sequences": mm == "sum"}}], layout="LC"))
    case("keras_stacked_lstm", "keras",
         K([10, 3], [{"type": "LSTM", "units": 8, "return_sequences": True}, {"type": "LSTM", "units": 4},
                     {"type": "Dense", "units": 1}], layout="LC"))
    case("keras_conv1d_lstm", "keras",
         K([30, 2], [{"type": "Conv1D", "filters": 8, "kernel_size": 5}, {"type": "MaxPooling1D", "pool_size": 2},
                     {"type": "LSTM", "units": 10}, {"type": "Dense", "units": 1}], layout="LC"))
    for p in (1, [2, 1], [[1, 0], [2, 3]]):
        case(f"keras_zeropadding2d_{json.dumps(p).replace(' ', '')}", "keras",
             K([7, 9, 2], [{"type": "ZeroPadding2D", "padding": p}, {"type": "Conv2D", "filters": 3, "kernel_size": 3}]))
    case("keras_zeropadding1d", "keras", K([10, 2], [{"type": "ZeroPadding1D", "padding": [2, 1]}], layout="LC"))
    for sz in (2, [2, 3]):
        case(f"keras_upsampling2d_{json.dumps(sz).replace(' ', '')}", "keras",
             K([4, 5, 3], [{"type": "UpSampling2D", "size": sz}, {"type": "Conv2D", "filters": 2, "kernel_size": 3,
                                                                   "padding": "same"}]))
    case("keras_upsampling1d", "keras", K([6, 2], [{"type": "UpSampling1D", "size": 3}], layout="LC"))
    case("keras_segmentation_decoder", "keras",
         K([4, 4, 40], [{"type": "UpSampling2D"}, {"type": "Conv2D", "filters": 20, "kernel_size": 3, "padding": "same"},
                        {"type": "UpSampling2D"}, {"type": "Conv2D", "filters": 5, "kernel_size": 3, "padding": "same"}]))
    case("keras_frozen_dense", "keras",
         K([6], [{"type": "Dense", "units": 4, "trainable": False}, {"type": "Dense", "units": 2}]))
    case("keras_spelling_mixed_case", "keras",
         K([16, 16, 3], [{"Type": "conv2d", "Filters": 4, "Kernel_Size": 3, "Strides": 2, "Padding": "SAME"},
                         {"type": "MAXPOOLING2D", "pool_size": 2}, {"type": "flatten"}, {"type": "DENSE", "units": 3}]))


def error_cases():
    # The framework must reject these too.
    case("err_torch_kernel_larger_than_input", "pytorch",
         T([1, 4, 4], [{"type": "Conv2d", "out_channels": 1, "kernel_size": 5}]))
    case("err_torch_kernel_larger_after_pool", "pytorch",
         T([1, 8, 8], [{"type": "MaxPool2d", "kernel_size": 2}, {"type": "MaxPool2d", "kernel_size": 2},
                       {"type": "Conv2d", "out_channels": 1, "kernel_size": 3}]))
    case("err_torch_dilated_kernel_too_large", "pytorch",
         T([1, 6, 6], [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "dilation": 3}]))
    case("err_torch_groups_in_channels", "pytorch",
         T([5, 8, 8], [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "groups": 2}]))
    case("err_torch_groups_out_channels", "pytorch",
         T([4, 8, 8], [{"type": "Conv2d", "out_channels": 5, "kernel_size": 3, "groups": 2}]))
    case("err_torch_same_with_stride", "pytorch",
         T([1, 8, 8], [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": "same"}]))
    case("err_torch_output_padding_too_large", "pytorch",
         T([1, 4, 4], [{"type": "ConvTranspose2d", "out_channels": 1, "kernel_size": 3, "stride": 2,
                        "output_padding": 2}]))
    case("err_torch_pool_padding_over_half", "pytorch",
         T([1, 8, 8], [{"type": "MaxPool2d", "kernel_size": 2, "padding": 2}]))
    case("err_torch_pool_window_too_large", "pytorch",
         T([1, 3, 3], [{"type": "MaxPool2d", "kernel_size": 4}]))
    case("err_torch_lstm_on_image", "pytorch",
         T([3, 8, 8], [{"type": "LSTM", "hidden_size": 4}]))
    case("err_torch_in_features_mismatch", "pytorch",
         T([3, 4, 4], [{"type": "Flatten"}, {"type": "Linear", "in_features": 47, "out_features": 2}]))
    case("err_torch_transposed_negative_output", "pytorch",
         T([1, 1, 1], [{"type": "ConvTranspose2d", "out_channels": 1, "kernel_size": 1, "padding": 1}]))
    case("err_keras_kernel_larger_than_input", "keras",
         K([4, 4, 1], [{"type": "Conv2D", "filters": 1, "kernel_size": 5}]))
    case("err_keras_pool_larger_than_input", "keras",
         K([3, 3, 1], [{"type": "MaxPooling2D", "pool_size": 4}]))
    case("err_keras_output_padding_ge_stride", "keras",
         K([4, 4, 1], [{"type": "Conv2DTranspose", "filters": 1, "kernel_size": 3, "strides": 2,
                        "output_padding": 2}]))


SOLVE = []


def solve_case(name, fw, req, unknown, target, lo, hi, note=None):
    """Brute force in the framework: which value of the field reaches the target?"""
    layer_i, field = unknown
    sols = []
    for x in range(lo, hi + 1):
        r = json.loads(json.dumps(req))
        L = r["layers"][layer_i]
        if "layer" in L and field not in L:
            L = L["layer"]
        L[field] = x
        try:
            res = run_torch(r) if fw == "pytorch" else run_keras(r)
        except Exception:  # invalid architecture for this candidate
            continue
        tl = target.get("layer")
        if "params" in target:
            got = res[tl]["params"] if tl is not None else sum(l["params"] for l in res)
            ok = got == target["params"]
        else:
            got = res[tl]["output_shape"] if tl is not None else res[-1]["output_shape"]
            ok = got == target["output_shape"]
        if ok:
            sols.append(x)
    marked = json.loads(json.dumps(req))
    L = marked["layers"][layer_i]
    if "layer" in L and field not in L:
        L = L["layer"]
    L[field] = "?"
    SOLVE.append({"name": name, "framework": fw, "request": {"model": marked, "target": target,
                                                           "search": {"min": lo, "max": hi}},
                  "solutions": sols, "note": note})


def solve_cases():
    lstm = K([15, 3], [{"type": "LSTM", "units": 1}], layout="LC")
    solve_case("solve_exam_bits_lstm_180_keras", "keras", lstm, (0, "units"), {"params": 180}, 1, 12,
               "Keras: 4(h(3+h)+h) = 180 -> h = 5 (the printed key's h = 2 is wrong)")
    tl = T([15, 3], [{"type": "LSTM", "hidden_size": 1}])
    solve_case("solve_exam_bits_lstm_180_torch", "pytorch", tl, (0, "hidden_size"), {"params": 180}, 1, 12,
               "PyTorch 4h(3+h)+8h = 180 has no integer root")
    solve_case("solve_torch_lstm_200", "pytorch", tl, (0, "hidden_size"), {"params": 200}, 1, 12)
    solve_case("solve_keras_gru_hidden", "keras", K([7, 4], [{"type": "GRU", "units": 1}], layout="LC"),
               (0, "units"), {"params": 3 * (6 * (4 + 6) + 2 * 6)}, 1, 20)
    solve_case("solve_conv_filters_params", "pytorch",
               T([3, 32, 32], [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3}]), (0, "out_channels"),
               {"params": 448}, 1, 40)
    solve_case("solve_conv_kernel_for_shape", "pytorch",
               T([3, 32, 32], [{"type": "Conv2d", "out_channels": 8, "kernel_size": 1}]), (0, "kernel_size"),
               {"output_shape": [8, 28, 28]}, 1, 32)
    solve_case("solve_conv_padding_for_shape", "pytorch",
               T([1, 26, 26], [{"type": "Conv2d", "out_channels": 5, "kernel_size": 7, "stride": 3, "padding": 0}]),
               (0, "padding"), {"output_shape": [5, 8, 8]}, 0, 3)
    solve_case("solve_conv_stride_for_shape", "pytorch",
               T([3, 256, 256], [{"type": "Conv2d", "out_channels": 96, "kernel_size": 11, "padding": 5,
                                  "stride": 1}]), (0, "stride"), {"output_shape": [96, 64, 64]}, 1, 16)
    solve_case("solve_conv_stride_no_solution", "pytorch",
               T([3, 10, 10], [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 1}]), (0, "stride"),
               {"output_shape": [2, 5, 5]}, 1, 10)
    solve_case("solve_dense_hidden_network", "keras",
               K([30], [{"type": "Dense", "units": 1}, {"type": "Dense", "units": 1}]), (0, "units"),
               {"params": 31 * 8 + 9}, 1, 40)
    solve_case("solve_bidirectional_units", "keras",
               K([9, 4], [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 1}}], layout="LC"),
               (0, "units"), {"params": 2 * 4 * (6 * (4 + 6) + 6)}, 1, 20)
    solve_case("solve_pool_size_for_shape", "keras",
               K([28, 28, 3], [{"type": "MaxPooling2D", "pool_size": 1}]), (0, "pool_size"),
               {"output_shape": [9, 9, 3]}, 1, 28)


def rf_ok(req):
    return req.get("layout", "CHW") == "CHW" and len(req["input_shape"]) >= 2 and not any(
        norm(g(L, "type")) in ("lstm", "gru", "rnn", "embedding") for L in req["layers"]) and not any(
        norm(g(L, "type")).startswith("maxpool") and g(L, "dilation", default=1) not in (1, [1, 1]) for L in
        req["layers"])


def main():
    exam_cases()
    sweep_cases()
    keras_cases()
    error_cases()
    solve_cases()
    out = []
    for c in CASES:
        req = c["request"]
        entry = {"name": c["name"], "framework": c["framework"], "request": req}
        if c["note"]:
            entry["note"] = c["note"]
        info = {}
        try:
            layers = run_torch(req, info) if c["framework"] == "pytorch" else run_keras(req)
        except Exception as e:  # the framework rejects the architecture
            entry["error"] = (type(e).__name__ + ": " + str(e)).splitlines()[0][:300]
            out.append(entry)
            continue
        if c["name"].startswith("err_"):
            sys.exit(f"{c['name']}: the framework accepted an architecture expected to be invalid")
        entry["layers"] = layers
        entry["totals"] = {k: sum(l[k] for l in layers) for k in ("params", "trainable", "non_trainable")}
        if info:
            entry["torchinfo"] = info
        if c["rf"] and c["framework"] == "pytorch" and rf_ok(req):
            entry["receptive_field"] = torch_rf(req)
            entry["dilated"] = any(g(L, "dilation", default=1) not in (1, [1, 1], [1], [1, 1, 1])
                                   for L in req["layers"])
        out.append(entry)
    doc = {
        "generator": "tests/reference/gen_architecture.py",
        "versions": {"torch": torch.__version__, "keras": keras.__version__, "backend": keras.backend.backend(),
                     "numpy": np.__version__},
        "cases": out,
        "solve": SOLVE,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    n_err = sum(1 for e in out if "error" in e)
    n_rf = sum(1 for e in out if "receptive_field" in e)
    print(f"{len(out)} cases ({n_err} errors, {n_rf} with empirical receptive fields), {len(SOLVE)} solve cases",
          file=sys.stderr)


if __name__ == "__main__":
    main()
