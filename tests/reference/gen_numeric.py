#!/usr/bin/env python3
"""Golden fixtures for dlgrade's tensor / forward / backprop / loss core.

Runs the REAL frameworks in float64 and writes tests/fixtures/numeric.json:

* PyTorch (torch.float64, CPU, autograd) for every forward pass, every
  PyTorch-convention loss (clamp_log) and every gradient;
* Keras 3 on JAX (jax_enable_x64, floatx float64) for the Keras conventions:
  the epsilon-clipped losses (keras.ops.*_crossentropy differentiated with
  jax.grad) and whole networks in Keras layout (NHWC, kernels (kh, kw, in, out),
  padding="same", leaky_relu default slope, Flatten order);
* SymPy (exact rational linear algebra) for the inverse "find the filter" cases.

Install (a venv is at /work/pyref/venv):
    pip install torch numpy sympy jax keras
Run from the repository root:
    KERAS_BACKEND=jax python tests/reference/gen_numeric.py
The output is deterministic (fixed seeds). tests/golden_numeric.rs replays every
case through dlgrade and asserts agreement to 1e-9 relative (1e-12 absolute floor).
"""

import json
import os
import random
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import torch
import torch.nn.functional as F

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import sympy  # noqa: E402

keras.config.set_floatx("float64")
torch.set_default_dtype(torch.float64)

R = random.Random(20261127)
torch.manual_seed(20261127)
np.random.seed(20261127)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "numeric.json")


def tl(t):
    """Tensor -> nested lists of floats."""
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().double().tolist()
    return np.asarray(t, dtype=np.float64).tolist()


def rnd(*shape, scale=1.0):
    return torch.randn(*shape) * scale


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

def random_activation(allow_softmax=False):
    choices = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "gelu_tanh"]
    if allow_softmax:
        choices.append("softmax")
    name = R.choice(choices)
    if name == "leaky_relu":
        if R.random() < 0.3:
            return "leaky_relu", {"slope": 0.01}  # PyTorch default
        a = round(R.uniform(0.05, 0.4), 3)
        return {"name": "leaky_relu", "alpha": a}, {"slope": a}
    if name == "elu":
        if R.random() < 0.3:
            return "elu", {"alpha": 1.0}
        a = round(R.uniform(0.3, 1.5), 3)
        return {"name": "elu", "alpha": a}, {"alpha": a}
    if name == "gelu_tanh":
        if R.random() < 0.5:
            return "gelu_tanh", {}
        return {"name": "gelu", "approximate": "tanh"}, {}
    if name == "softmax":
        return {"name": "softmax", "axis": 1}, {}
    return name, {}


def act_name(spec):
    return spec if isinstance(spec, str) else spec["name"] + ("_tanh" if spec.get("approximate") == "tanh" else "")


def torch_act(spec, opts, z):
    n = act_name(spec)
    if n == "linear":
        return z
    if n == "relu":
        return F.relu(z)
    if n == "leaky_relu":
        return F.leaky_relu(z, opts["slope"])
    if n == "sigmoid":
        return torch.sigmoid(z)
    if n == "tanh":
        return torch.tanh(z)
    if n == "elu":
        return F.elu(z, opts["alpha"])
    if n == "gelu":
        return F.gelu(z)
    if n == "gelu_tanh":
        return F.gelu(z, approximate="tanh")
    if n == "softmax":
        return F.softmax(z, dim=-1)
    raise ValueError(n)


# ---------------------------------------------------------------------------
# Random PyTorch-layout networks
# ---------------------------------------------------------------------------

class Net:
    """A list of (spec, params, fn) where fn(x) -> (pre, out)."""

    def __init__(self):
        self.specs = []
        self.params = {}  # name -> tensor (leaf, requires_grad)
        self.fns = []

    def param(self, name, t, grad=True):
        t = t.clone().detach().requires_grad_(grad)
        self.params[name] = t
        return t

    def run(self, x):
        pres, outs = [], []
        for fn in self.fns:
            pre, x = fn(x)
            if pre is not None:
                pre.retain_grad()
            x.retain_grad()
            pres.append(pre)
            outs.append(x)
        return pres, outs


def add_dense(net, shape, out_f=None, act=None, bias=None):
    i = len(net.specs)
    in_f = shape[-1]
    out_f = out_f or R.randint(1, 5)
    w = net.param(f"{i}.weight", rnd(out_f, in_f, scale=0.6))
    use_bias = R.random() < 0.8 if bias is None else bias
    b = net.param(f"{i}.bias", rnd(out_f, scale=0.3)) if use_bias else None
    aspec, aopts = act if act is not None else random_activation()
    spec = {"type": "dense", "weight": tl(w)}
    if use_bias:
        spec["bias"] = tl(b)
    if aspec != "linear" or R.random() < 0.3:
        spec["activation"] = aspec

    def fn(x, w=w, b=b, aspec=aspec, aopts=aopts):
        z = x @ w.T
        if b is not None:
            z = z + b
        if act_name(aspec) == "linear":
            return None, z.clone()
        return z, torch_act(aspec, aopts, z)

    net.specs.append(spec)
    net.fns.append(fn)
    return list(shape[:-1]) + [out_f]


def add_conv(net, shape, two_d):
    i = len(net.specs)
    cin = shape[1]
    groups = R.choice([1, 1, 2]) if cin % 2 == 0 else 1
    cout = R.choice([1, 2, 3, 4])
    if cout % groups:
        cout = groups * R.randint(1, 2)
    spatial = shape[2:]
    k = [R.randint(1, min(3, s)) for s in spatial]
    stride = [R.randint(1, 2) for _ in spatial]
    dil = [R.choice([1, 1, 2]) for _ in spatial]
    # padding variants
    mode = R.choice(["int", "int", "per_dim", "per_side", "same", "none"])
    if mode == "same" and any(s > 1 for s in stride):
        mode = "int"
    if mode == "int":
        p = R.randint(0, 2)
        pad_spec, sides = p, [p] * (2 * len(spatial))
    elif mode == "per_dim":
        ps = [R.randint(0, 2) for _ in spatial]
        pad_spec = ps if two_d else [ps[0], ps[0]]
        sides = [ps[0], ps[0], ps[-1], ps[-1]] if two_d else [ps[0], ps[0]]
    elif mode == "per_side":
        sides = [R.randint(0, 2) for _ in range(2 * len(spatial))]
        pad_spec = sides
    elif mode == "same":
        pad_spec, sides = "same", None
    else:
        pad_spec, sides = None, [0] * (2 * len(spatial))
    # make sure the kernel fits
    for d in range(len(spatial)):
        padded = spatial[d] + (sum(sides[2 * d:2 * d + 2]) if sides else 0)
        while dil[d] * (k[d] - 1) + 1 > padded:
            if dil[d] > 1:
                dil[d] = 1
            else:
                k[d] -= 1
    wshape = [cout, cin // groups] + k
    w = net.param(f"{i}.weight", rnd(*wshape, scale=0.5))
    use_bias = R.random() < 0.7
    b = net.param(f"{i}.bias", rnd(cout, scale=0.3)) if use_bias else None
    aspec, aopts = random_activation()
    spec = {"type": "conv2d" if two_d else "conv1d", "weight": tl(w)}
    if use_bias:
        spec["bias"] = tl(b)
    if any(s != 1 for s in stride) or R.random() < 0.3:
        spec["stride"] = stride if (two_d and (len(set(stride)) > 1 or R.random() < 0.5)) else stride[0]
    if pad_spec is not None:
        spec["padding"] = pad_spec
    if any(d != 1 for d in dil):
        spec["dilation"] = dil if len(set(dil)) > 1 or R.random() < 0.5 else dil[0]
    if groups != 1:
        spec["groups"] = groups
    if aspec != "linear":
        spec["activation"] = aspec

    def fn(x, w=w, b=b, aspec=aspec, aopts=aopts, sides=sides):
        conv = F.conv2d if two_d else F.conv1d
        if pad_spec == "same":
            z = conv(x, w, b, stride=1, padding="same", dilation=dil, groups=groups)
        else:
            if two_d:
                t, bo, l, r = sides
                xp = F.pad(x, (l, r, t, bo))
            else:
                l, r = sides
                xp = F.pad(x, (l, r))
            z = conv(xp, w, b, stride=stride, dilation=dil, groups=groups)
        if act_name(aspec) == "linear":
            return None, z.clone()
        return z, torch_act(aspec, aopts, z)

    net.specs.append(spec)
    net.fns.append(fn)
    with torch.no_grad():
        probe = fn(torch.zeros(shape))[1]
    return list(probe.shape)


def add_pool(net, shape, two_d):
    spatial = shape[2:]
    is_max = R.random() < 0.6
    k = [R.randint(1, min(3, s)) for s in spatial]
    if two_d and R.random() < 0.6:
        k = [k[0], k[0]] if k[0] <= min(spatial) else k
    stride = [R.randint(1, 3) for _ in spatial] if R.random() < 0.5 else None
    p = [R.randint(0, kk // 2) for kk in k]
    if len(set(p)) > 1 and not two_d:
        p = [p[0]]
    spec = {"type": ("max_pool" if is_max else "avg_pool") + ("2d" if two_d else "1d"), "kernel_size": k if len(set(k)) > 1 else k[0]}
    if stride is not None:
        spec["stride"] = stride if len(set(stride)) > 1 else stride[0]
    st = stride or k
    if any(p):
        spec["padding"] = p if len(set(p)) > 1 else p[0]
    zero = is_max and R.random() < 0.5
    if is_max and (zero or R.random() < 0.3):
        spec["pad_value"] = "zero" if zero else "-inf"
    cip = True
    if not is_max and R.random() < 0.5:
        cip = R.random() < 0.5
        spec["count_include_pad"] = cip
    pads = p if two_d else p[:1]

    def fn(x):
        if two_d:
            if is_max:
                if zero:
                    xp = F.pad(x, (pads[1], pads[1], pads[0], pads[0]), value=0.0)
                    return None, F.max_pool2d(xp, k, st)
                return None, F.max_pool2d(x, k, st, padding=pads)
            return None, F.avg_pool2d(x, k, st, padding=pads, count_include_pad=cip)
        if is_max:
            if zero:
                return None, F.max_pool1d(F.pad(x, (pads[0], pads[0]), value=0.0), k, st)
            return None, F.max_pool1d(x, k, st, padding=pads)
        return None, F.avg_pool1d(x, k, st, padding=pads, count_include_pad=cip)

    net.specs.append(spec)
    net.fns.append(fn)
    with torch.no_grad():
        probe = fn(torch.zeros(shape))[1]
    return list(probe.shape)


def add_batchnorm(net, shape):
    i = len(net.specs)
    c = shape[1]
    mean = net.param(f"{i}.running_mean", rnd(c, scale=0.5), grad=False)
    var = net.param(f"{i}.running_var", torch.rand(c) + 0.5, grad=False)
    gamma = net.param(f"{i}.weight", torch.rand(c) + 0.5)
    beta = net.param(f"{i}.bias", rnd(c, scale=0.3))
    eps = R.choice([1e-5, 1e-3, 0.1])
    spec = {"type": "batch_norm", "running_mean": tl(mean), "running_var": tl(var), "gamma": tl(gamma), "beta": tl(beta)}
    if eps != 1e-5:
        spec["eps"] = eps

    def fn(x):
        return None, F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)

    net.specs.append(spec)
    net.fns.append(fn)
    return shape


def add_simple(net, shape, kind):
    if kind == "flatten":
        net.specs.append({"type": "flatten"})
        net.fns.append(lambda x: (None, x.flatten(1)))
        return [shape[0], int(np.prod(shape[1:]))]
    if kind == "dropout":
        p = round(R.uniform(0.1, 0.6), 2)
        net.specs.append({"type": "dropout", "rate": p})
        net.fns.append(lambda x: (None, F.dropout(x, p, training=False).clone()))
        return shape
    aspec, aopts = random_activation()
    net.specs.append({"type": "activation", "activation": aspec})
    net.fns.append(lambda x: (None, torch_act(aspec, aopts, x)))
    return shape


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

def keras_loss_and_grad(kind, reduction, pred, target, eps=1e-7):
    """Keras-convention losses (epsilon clipping) with jax.grad."""
    p = jnp.asarray(np.array(pred, dtype=np.float64))
    y = jnp.asarray(np.array(target, dtype=np.float64))

    def f(pp):
        if kind == "bce":
            terms = keras.ops.binary_crossentropy(y, pp)
            return jnp.sum(terms) / (terms.size if reduction == "mean" else 1)
        if kind == "categorical_crossentropy":
            terms = keras.ops.categorical_crossentropy(y, pp, axis=-1)
        else:
            terms = keras.ops.sparse_categorical_crossentropy(y.astype(jnp.int32), pp, axis=-1)
        return jnp.sum(terms) / (terms.size if reduction == "mean" else 1)

    v, g = jax.value_and_grad(f)(p)
    return float(v), np.asarray(g)


def torch_loss(kind, reduction, p, y, floor=-100.0, class_dim=1):
    if kind == "mse":
        return F.mse_loss(p, y, reduction=reduction)
    if kind == "sse":
        t = 0.5 * (p - y) ** 2
        return t.mean() if reduction == "mean" else t.sum()
    if kind == "mae":
        return F.l1_loss(p, y, reduction=reduction)
    if kind == "bce":
        assert floor == -100.0
        return F.binary_cross_entropy(p, y, reduction=reduction)
    if kind == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(p, y, reduction=reduction)
    if kind == "hinge":
        yy = y
        if bool(((y == 0) | (y == 1)).all()):
            yy = 2 * y - 1
        t = F.relu(1 - yy * p)
        return t.mean() if reduction == "mean" else t.sum()
    if kind == "categorical_crossentropy":
        t = -(y * torch.clamp(torch.log(p), min=floor)).sum(dim=class_dim)
        return t.mean() if reduction == "mean" else t.sum()
    if kind == "categorical_crossentropy_with_logits":
        return F.cross_entropy(p, y, reduction=reduction)
    if kind == "sparse_categorical_crossentropy":
        return F.nll_loss(torch.clamp(torch.log(p), min=floor), y.long(), reduction=reduction)
    if kind == "sparse_categorical_crossentropy_with_logits":
        return F.cross_entropy(p, y.long(), reduction=reduction)
    raise ValueError(kind)


def random_target(kind, out_shape):
    if kind in ("bce", "bce_with_logits"):
        if R.random() < 0.5:
            return torch.randint(0, 2, out_shape).double()
        return torch.rand(out_shape)
    if kind == "hinge":
        if R.random() < 0.5:
            return torch.randint(0, 2, out_shape).double()
        return torch.randint(0, 2, out_shape).double() * 2 - 1
    if kind in ("categorical_crossentropy", "categorical_crossentropy_with_logits"):
        n, c = out_shape[0], out_shape[1]
        if R.random() < 0.6:
            idx = torch.randint(0, c, (n,))
            return F.one_hot(idx, c).double()
        return torch.softmax(torch.randn(n, c), dim=1)
    if kind.startswith("sparse"):
        return torch.randint(0, out_shape[1], (out_shape[0],)).double()
    return torch.randn(out_shape)


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

CASES = []


def gradient_case(name, net, x, kind, reduction, convention="clamp_log", log_floor=None, forward_only=False, batched=True, extra=None):
    xin = x.clone().detach().requires_grad_(True)
    pres, outs = net.run(xin)
    out = outs[-1]
    req = {"input": tl(x), "layers": net.specs}
    if not batched:
        req["batched"] = False
        req["input"] = tl(x[0])
    if extra:
        req.update(extra)
    layers_exp = [
        {"output": tl(o[0] if not batched else o), **({"pre_activation": tl(p[0] if not batched else p)} if p is not None else {})}
        for p, o in zip(pres, outs)
    ]
    if forward_only:
        CASES.append({"name": name, "kind": "forward", "request": req, "expected": {"layers": layers_exp}})
        return
    target = random_target(kind, list(out.shape))
    loss_cfg = {"kind": kind}
    if reduction != ("sum" if kind == "sse" else "mean") or R.random() < 0.5:
        loss_cfg["reduction"] = reduction
    if convention == "epsilon":
        loss_cfg["log_convention"] = "epsilon"
        v, g = keras_loss_and_grad(kind, reduction, tl(out), tl(target))
        out.backward(gradient=torch.tensor(g))
        value = v
    else:
        if log_floor is not None:
            loss_cfg["log_floor"] = log_floor
        L = torch_loss(kind, reduction, out, target)
        L.backward()
        value = L.item()
    req["target"] = tl(target[0] if not batched else target)
    req["loss"] = loss_cfg
    exp = {
        "loss": value,
        "layers": layers_exp,
        "output_gradients": [tl(o.grad[0] if not batched else o.grad) for o in outs],
        "pre_activation_gradients": [tl(p.grad[0] if not batched else p.grad) if p is not None else None for p in pres],
        "input_gradient": tl(xin.grad[0] if not batched else xin.grad),
        "params": {k: tl(v.grad) if v.grad is not None else tl(torch.zeros_like(v)) for k, v in net.params.items()},
    }
    CASES.append({"name": name, "kind": "gradients", "request": req, "expected": exp})


def final_head(net, shape, kind, softmax_axis=1):
    """Adds the last dense layer with the activation the loss needs."""
    if kind in ("bce",):
        return add_dense(net, shape, act=("sigmoid", {}))
    if kind in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        sm = {"name": "softmax", "axis": softmax_axis}
        return add_dense(net, shape, out_f=R.randint(2, 4), act=(sm, {}))
    if kind in ("categorical_crossentropy_with_logits", "sparse_categorical_crossentropy_with_logits"):
        return add_dense(net, shape, out_f=R.randint(2, 4), act=("linear", {}))
    return add_dense(net, shape)


NET_LOSSES = [
    ("mse", "clamp_log"), ("sse", "clamp_log"), ("mae", "clamp_log"), ("bce", "clamp_log"), ("bce", "epsilon"),
    ("bce_with_logits", "clamp_log"), ("categorical_crossentropy", "clamp_log"), ("categorical_crossentropy", "epsilon"),
    ("categorical_crossentropy_with_logits", "clamp_log"), ("sparse_categorical_crossentropy", "clamp_log"),
    ("sparse_categorical_crossentropy", "epsilon"), ("sparse_categorical_crossentropy_with_logits", "clamp_log"),
    ("hinge", "clamp_log"),
]


def mlp_cases(count):
    for c in range(count):
        kind, conv = NET_LOSSES[c % len(NET_LOSSES)]
        red = R.choice(["mean", "sum"])
        net = Net()
        n = R.randint(1, 3)
        shape = [n, R.randint(1, 5)]
        x = rnd(*shape)
        for _ in range(R.randint(0, 2)):
            shape = add_dense(net, shape)
            if R.random() < 0.2:
                shape = add_simple(net, shape, R.choice(["dropout", "activation"]))
        batched = n > 1 or R.random() < 0.7
        shape = final_head(net, shape, kind, softmax_axis=R.choice([1, -1]) if batched else R.choice([0, -1]))
        gradient_case(f"mlp_{c}_{kind}_{conv}_{red}", net, x, kind, red, conv, batched=batched)


def cnn_cases(count, two_d):
    made = 0
    attempt = 0
    while made < count:
        attempt += 1
        kind, conv = NET_LOSSES[attempt % len(NET_LOSSES)]
        red = R.choice(["mean", "sum"])
        net = Net()
        n = R.randint(1, 2)
        cin = R.randint(1, 3)
        spatial = [R.randint(3, 6), R.randint(3, 7)] if two_d else [R.randint(4, 9)]
        shape = [n, cin] + spatial
        x = rnd(*shape)
        try:
            for _ in range(R.randint(1, 3)):
                r = R.random()
                if r < 0.5:
                    shape = add_conv(net, shape, two_d)
                elif r < 0.8:
                    shape = add_pool(net, shape, two_d)
                elif r < 0.9:
                    shape = add_batchnorm(net, shape)
                else:
                    shape = add_simple(net, shape, R.choice(["dropout", "activation"]))
                if min(shape[2:]) < 1:
                    raise ValueError("collapsed")
        except (RuntimeError, ValueError):
            continue
        forward_only = made % 6 == 5
        shape = add_simple(net, shape, "flatten")
        shape = final_head(net, shape, kind)
        gradient_case(
            f"cnn{'2d' if two_d else '1d'}_{made}_{kind}_{conv}_{red}", net, x, kind, red, conv, forward_only=forward_only
        )
        made += 1


def loss_cases():
    kinds = [k for k, _ in NET_LOSSES]
    idx = 0
    for kind, conv in NET_LOSSES:
        for red in ("mean", "sum"):
            for rep in range(3):
                idx += 1
                n = R.randint(1, 4)
                c = R.randint(2, 5)
                shape = [n, c]
                if kind in ("bce",):
                    p = torch.rand(shape) * 0.96 + 0.02
                elif kind in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
                    p = torch.softmax(torch.randn(shape) * 1.5, dim=1)
                    if conv == "epsilon" and rep == 2:
                        p = torch.rand(shape) * 0.9 + 0.05  # unnormalized: Keras divides by the sum
                else:
                    p = torch.randn(shape) * 1.5
                y = random_target(kind, shape)
                cfg = {"kind": kind, "reduction": red}
                if conv == "epsilon":
                    cfg["log_convention"] = "epsilon"
                    v, g = keras_loss_and_grad(kind, red, tl(p), tl(y))
                else:
                    pp = p.clone().requires_grad_(True)
                    L = torch_loss(kind, red, pp, y)
                    L.backward()
                    v, g = L.item(), pp.grad
                CASES.append({
                    "name": f"loss_{kind}_{conv}_{red}_{rep}",
                    "kind": "loss",
                    "request": {"predictions": tl(p), "targets": tl(y), "loss": cfg},
                    "expected": {"value": v, "gradient": tl(g)},
                })
    # Segmentation-style cross-entropy with a class axis 1 and spatial dims.
    for rep in range(3):
        p = torch.randn(2, 3, 2, 2)
        y = torch.randint(0, 3, (2, 2, 2)).double()
        pp = p.clone().requires_grad_(True)
        L = F.cross_entropy(pp, y.long())
        L.backward()
        CASES.append({
            "name": f"loss_sparse_logits_spatial_{rep}",
            "kind": "loss",
            "request": {"predictions": tl(p), "targets": tl(y), "loss": {"kind": "sparse_categorical_crossentropy_with_logits"}},
            "expected": {"value": L.item(), "gradient": tl(pp.grad)},
        })
    assert kinds


def inverse_cases(count):
    for c in range(count):
        kh, kw = R.randint(2, 3), R.randint(2, 3)
        ch = 1 if R.random() < 0.7 else 2
        h, w = kh + R.randint(0, 2), kw + R.randint(1, 3)
        stride = R.randint(1, 2)
        inp = np.random.randint(-5, 6, size=(ch, h, w)).astype(float)
        filt = np.random.randint(-3, 4, size=(ch, kh, kw)).astype(float)
        names = []
        fspec = filt.tolist()
        n_unk = R.randint(1, 4)
        cells = [(a, b, d) for a in range(ch) for b in range(kh) for d in range(kw)]
        # names in row-major filter order, so SymPy's column order is dlgrade's
        for k, (a, b, d) in enumerate(sorted(R.sample(cells, n_unk))):
            nm = "xyzuvw"[k]
            names.append(nm)
            fspec[a][b][d] = nm
        oh = (h - kh) // stride + 1
        ow = (w - kw) // stride + 1
        out = np.zeros((oh, ow))
        for i in range(oh):
            for j in range(ow):
                out[i, j] = np.sum(filt * inp[:, i * stride:i * stride + kh, j * stride:j * stride + kw])
        known = [[float(out[i, j]) if R.random() < 0.8 else None for j in range(ow)] for i in range(oh)]
        mode = c % 4
        if mode == 3:
            # contradict: flip one known output
            flat = [(i, j) for i in range(oh) for j in range(ow) if known[i][j] is not None]
            if flat:
                i, j = R.choice(flat)
                known[i][j] += 7.0
        # SymPy reference
        syms = sympy.symbols(" ".join(names)) if len(names) > 1 else (sympy.Symbol(names[0]),)
        sym = {nm: s for nm, s in zip(names, syms)}
        eqs = []
        for i in range(oh):
            for j in range(ow):
                if known[i][j] is None:
                    continue
                e = 0
                for a in range(ch):
                    for b in range(kh):
                        for d in range(kw):
                            f = fspec[a][b][d]
                            fv = sym[f] if isinstance(f, str) else sympy.Rational(int(f))
                            e += fv * sympy.Rational(int(inp[a, i * stride + b, j * stride + d]))
                eqs.append(e - sympy.Rational(known[i][j]).limit_denominator(10**6))
        if not eqs:
            continue
        sol = sympy.linsolve(eqs, list(syms))
        if sol == sympy.EmptySet:
            exp = {"status": "inconsistent"}
        else:
            (tup,) = list(sol)
            free = sorted({str(s) for v in tup for s in v.free_symbols}, key=names.index)
            values = {nm: float(v) for nm, v in zip(names, tup) if not v.free_symbols}
            exp = {"status": "unique" if not free else "infinitely_many", "free_variables": free, "values": values}
        fs = fspec if ch == 2 else fspec[0]
        req = {"input": inp.tolist() if ch == 2 else inp[0].tolist(), "filter": fs, "outputs": known}
        if stride != 1:
            req["stride"] = stride
        CASES.append({"name": f"inverse_{c}", "kind": "solve_filter", "request": req, "expected": exp})


# ---------------------------------------------------------------------------
# Keras-layout networks (real Keras 3 on JAX)
# ---------------------------------------------------------------------------

def keras_cases(count):
    made = 0
    while made < count:
        two_d = made % 3 != 2
        n = R.randint(1, 2)
        cin = R.randint(1, 3)
        spatial = [R.randint(4, 6), R.randint(4, 6)] if two_d else [R.randint(5, 8)]
        in_shape = spatial + [cin]
        specs = []
        klayers = []
        filters = R.randint(1, 3)
        k = R.randint(2, 3)
        stride = R.randint(1, 2)
        padding = R.choice(["valid", "same"])
        # keras.ops.tanh and BatchNormalization lose precision to ~1e-7 even
        # with floatx float64 (checked against numpy), so Keras cases leave
        # them out; both are covered against PyTorch float64 above.
        act = R.choice(["relu", "leaky_relu", "sigmoid", "elu", "gelu", "linear"])
        Conv = keras.layers.Conv2D if two_d else keras.layers.Conv1D
        klayers.append(Conv(filters, k, strides=stride, padding=padding, activation=act))
        pool_kind = R.choice(["max", "avg", "none"])
        Pool = {("max", True): keras.layers.MaxPooling2D, ("max", False): keras.layers.MaxPooling1D,
                ("avg", True): keras.layers.AveragePooling2D, ("avg", False): keras.layers.AveragePooling1D}
        ppad = R.choice(["valid", "same"])
        if pool_kind != "none":
            klayers.append(Pool[(pool_kind, two_d)](pool_size=2, strides=R.randint(1, 2), padding=ppad))
        klayers.append(keras.layers.Flatten())
        out_f = R.randint(1, 3)
        klayers.append(keras.layers.Dense(out_f, activation=R.choice(["linear", "sigmoid", "gelu"])))
        model = keras.Sequential([keras.Input(shape=in_shape)] + klayers)
        # randomize weights (incl. BN statistics)
        for layer in model.layers:
            ws = layer.get_weights()
            new = []
            for wv in ws:
                new.append(np.random.randn(*wv.shape) * 0.5)
            layer.set_weights(new)
        x = np.random.randn(n, *in_shape)
        for li, layer in enumerate(model.layers):
            ws = [w.tolist() for w in layer.get_weights()]
            cfg = layer.get_config()
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv1D)):
                s = {"type": "conv2d" if two_d else "conv1d", "weight": ws[0], "bias": ws[1], "stride": stride, "padding": padding}
                if act != "linear":
                    s["activation"] = act
                specs.append(s)
            elif isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.MaxPooling1D, keras.layers.AveragePooling2D,
                                    keras.layers.AveragePooling1D)):
                specs.append({"type": ("max_pool" if pool_kind == "max" else "avg_pool") + ("2d" if two_d else "1d"),
                              "kernel_size": 2, "stride": cfg["strides"][0] if isinstance(cfg["strides"], (list, tuple)) else cfg["strides"],
                              "padding": ppad})
            elif isinstance(layer, keras.layers.Flatten):
                specs.append({"type": "flatten"})
            else:
                s = {"type": "dense", "weight": ws[0], "bias": ws[1]}
                if cfg["activation"] != "linear":
                    s["activation"] = cfg["activation"]
                specs.append(s)
        # Forward per layer, loss and gradients via jax.grad on stateless_call.
        y = np.random.randn(n, out_f)
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        def loss_fn(tv_, x_):
            out, _ = model.stateless_call(tv_, ntv, x_, training=False)
            return jnp.mean((out - y) ** 2)

        try:
            val, (gtv, gx) = jax.value_and_grad(loss_fn, argnums=(0, 1))(tv, jnp.asarray(x))
        except Exception:  # noqa: BLE001 - e.g. a window that does not fit: draw again
            continue
        outs = []
        h = jnp.asarray(x)
        for layer in model.layers:
            h = layer(h, training=False)
            outs.append(np.asarray(h).tolist())
        # map trainable variable grads to dlgrade names
        params = {}
        ti = 0
        for li, layer in enumerate(model.layers):
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv1D, keras.layers.Dense)):
                for nm in ("kernel", "bias"):
                    params[f"{li}.{nm}"] = np.asarray(gtv[ti]).tolist()
                    ti += 1
        req = {"layout": "keras", "input": x.tolist(), "layers": specs, "target": y.tolist(), "loss": {"kind": "mse"}}
        CASES.append({
            "name": f"keras_{made}_{'2d' if two_d else '1d'}_{pool_kind}_{padding}_{ppad}",
            "kind": "gradients",
            "request": req,
            "expected": {"loss": float(val), "layers": [{"output": o} for o in outs], "input_gradient": np.asarray(gx).tolist(),
                         "params": params},
        })
        made += 1


# ---------------------------------------------------------------------------
# Exam questions (/work/shared/reference/exam-questions.md)
# ---------------------------------------------------------------------------

def exam_cases():
    # TUM Problem 5: 1x1 conv (3 -> 1, weights 1, no bias), max pool 2x2 stride 2
    # with 1 ZERO padding (the key's assumption), BCE summed over the 4 outputs.
    x = torch.tensor([[[[1, -0.5], [2, -2]], [[-2, 1], [-1.5, 1]], [[1, 0], [0, 0]]]], dtype=torch.float64)
    y = torch.tensor([[[[0, 1], [1, 0]]]], dtype=torch.float64)
    for pad_value in ("zero", "-inf"):
        net = Net()
        w = net.param("0.weight", torch.ones(1, 3, 1, 1))
        net.specs.append({"type": "conv2d", "weight": tl(w)})
        net.fns.append(lambda t, w=w: (None, F.conv2d(t, w)))
        net.specs.append({"type": "max_pool2d", "kernel_size": 2, "stride": 2, "padding": 1, "pad_value": pad_value})
        if pad_value == "zero":
            net.fns.append(lambda t: (None, F.max_pool2d(F.pad(t, (1, 1, 1, 1), value=0.0), 2, 2)))
        else:
            net.fns.append(lambda t: (None, F.max_pool2d(t, 2, 2, padding=1)))
        xin = x.clone().requires_grad_(True)
        pres, outs = net.run(xin)
        out = outs[-1]
        if pad_value == "zero":
            # BCE over probabilities, summed; log(0) assumed -1e9 in the exam
            # (no log(0) occurs here: the zero outputs have target 0).
            L = F.binary_cross_entropy(out, y, reduction="sum")
            L.backward()
            CASES.append({
                "name": "exam_tum_p5_conv1x1_maxpool_zero_pad_bce_sum",
                "kind": "gradients",
                "request": {"input": tl(x), "layers": net.specs, "target": tl(y),
                            "loss": {"kind": "bce", "reduction": "sum", "log_floor": -1e9}},
                "expected": {"loss": L.item(), "layers": [{"output": tl(o)} for o in outs],
                             "output_gradients": [tl(o.grad) for o in outs], "input_gradient": tl(xin.grad),
                             "params": {"0.weight": tl(w.grad)}},
            })
        else:
            CASES.append({
                "name": "exam_tum_p5_forward_framework_neg_inf_padding",
                "kind": "forward",
                "request": {"input": tl(x), "layers": net.specs},
                "expected": {"layers": [{"output": tl(o)} for o in outs]},
            })

    # BITS EC3 4(b): single sigmoid neuron, SSE with the 1/2 factor.
    def neuron(name, xv, wv, b, target, kind, reduction):
        net = Net()
        w = net.param("0.weight", torch.tensor([wv]))
        bb = net.param("0.bias", torch.tensor([b]))
        net.specs.append({"type": "dense", "weight": tl(w), "bias": tl(bb), "activation": "sigmoid"})
        net.fns.append(lambda t: ((t @ w.T + bb), torch.sigmoid(t @ w.T + bb)))
        xt = torch.tensor([xv])
        xin = xt.clone().requires_grad_(True)
        pres, outs = net.run(xin)
        yt = torch.tensor([[target]])
        L = torch_loss(kind, reduction, outs[-1], yt)
        L.backward()
        CASES.append({
            "name": name,
            "kind": "gradients",
            "request": {"input": tl(xt), "layers": net.specs, "target": tl(yt), "loss": {"kind": kind, "reduction": reduction}},
            "expected": {"loss": L.item(), "layers": [{"output": tl(outs[0]), "pre_activation": tl(pres[0])}],
                         "input_gradient": tl(xin.grad), "params": {"0.weight": tl(w.grad), "0.bias": tl(bb.grad)}},
        })

    neuron("exam_bits_ec3_4b_sigmoid_neuron_sse", [0.65, 0.75], [0.3, 0.5], 1.75, 2.5, "sse", "sum")
    # BITS EC3 4(a): sigmoid neuron, BCE, x = 3.5, w = b = -2, y = 0.5 (first Adam gradient).
    neuron("exam_bits_ec3_4a_sigmoid_neuron_bce", [3.5], [-2.0], -2.0, 0.5, "bce", "mean")

    # BITS EC2 2(c): 1 -> 2 (sigmoid) -> 1 (sigmoid), x = 0.75, target 1.25, MSE.
    net = Net()
    w1 = net.param("0.weight", torch.tensor([[0.5], [-0.6]]))
    b1 = net.param("0.bias", torch.tensor([0.1, -0.2]))
    w2 = net.param("1.weight", torch.tensor([[0.7, -0.8]]))
    b2 = net.param("1.bias", torch.tensor([0.3]))
    net.specs += [
        {"type": "dense", "weight": tl(w1), "bias": tl(b1), "activation": "sigmoid"},
        {"type": "dense", "weight": tl(w2), "bias": tl(b2), "activation": "sigmoid"},
    ]
    net.fns += [lambda t: (t @ w1.T + b1, torch.sigmoid(t @ w1.T + b1)), lambda t: (t @ w2.T + b2, torch.sigmoid(t @ w2.T + b2))]
    xt = torch.tensor([[0.75]])
    xin = xt.clone().requires_grad_(True)
    pres, outs = net.run(xin)
    yt = torch.tensor([[1.25]])
    L = F.mse_loss(outs[-1], yt)
    L.backward()
    CASES.append({
        "name": "exam_bits_ec2_2c_two_sigmoid_layers_mse",
        "kind": "gradients",
        "request": {"input": tl(xt), "layers": net.specs, "target": tl(yt), "loss": {"kind": "mse"}},
        "expected": {"loss": L.item(), "layers": [{"output": tl(o), "pre_activation": tl(p)} for p, o in zip(pres, outs)],
                     "output_gradients": [tl(o.grad) for o in outs], "input_gradient": tl(xin.grad),
                     "params": {k: tl(v.grad) for k, v in net.params.items()}},
    })

    # TUM Problem 4 a): the box blur and the vertical edge kernel applied to an image.
    img = torch.arange(25, dtype=torch.float64).reshape(1, 1, 5, 5) % 7
    for kname, ker in (("box_blur", torch.full((1, 1, 3, 3), 1.0 / 9.0)), ("vertical_edge", torch.tensor([[[[1.0, -1.0], [1.0, -1.0]]]]))):
        out = F.conv2d(img, ker)
        CASES.append({
            "name": f"exam_tum_p4a_{kname}",
            "kind": "forward",
            "request": {"input": tl(img), "layers": [{"type": "conv2d", "weight": tl(ker)}]},
            "expected": {"layers": [{"output": tl(out)}]},
        })

    # BITS EC3 1(e): find x, y, z of F from the top-left corner of I and O.
    I = [[3, 0, 3, -3, 0], [-3, 2, 0, 3, -2], [-5, 0, 3, -2, 0]]
    Fm = [["x", "y", "z"], [1, 0, 2], [-1, 1, 0]]
    O = [[4, 0, -3]]
    xs, ys, zs = sympy.symbols("x y z")
    fm = [[xs, ys, zs], [1, 0, 2], [-1, 1, 0]]
    eqs = [sum(fm[a][b] * I[a][j + b] for a in range(3) for b in range(3)) - O[0][j] for j in range(3)]
    (tup,) = list(sympy.linsolve(eqs, [xs, ys, zs]))
    CASES.append({
        "name": "exam_bits_ec3_1e_find_filter_entries",
        "kind": "solve_filter",
        "request": {"input": I, "filter": Fm, "outputs": O},
        "expected": {"status": "unique", "free_variables": [], "values": {n: float(v) for n, v in zip("xyz", tup)}},
    })


def main():
    exam_cases()
    mlp_cases(60)
    cnn_cases(60, True)
    cnn_cases(30, False)
    loss_cases()
    inverse_cases(24)
    keras_cases(18)
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    doc = {
        "generator": "tests/reference/gen_numeric.py",
        "torch": torch.__version__,
        "keras": keras.__version__,
        "jax": jax.__version__,
        "sympy": sympy.__version__,
        "cases": CASES,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    kinds = {}
    for c in CASES:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    print(f"wrote {len(CASES)} cases to {OUT}: {kinds}", file=sys.stderr)


if __name__ == "__main__":
    main()
