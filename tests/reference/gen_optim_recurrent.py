#!/usr/bin/env python3
"""Golden fixtures for src/compute/optim.rs and src/compute/recurrent.rs.

Runs the REAL frameworks:
  * torch.optim (SGD / momentum / dampening / Nesterov, Adagrad, RMSprop incl.
    centered, Adam, AdamW, AMSGrad) in float64;
  * Keras 3 optimizers on the JAX backend in float64 (SGD momentum / Nesterov /
    decoupled weight decay, RMSprop, Adagrad, Adam, AdamW);
  * torch.nn.RNNCell / LSTMCell / GRUCell stepped over the sequence (and the
    full nn.RNN / nn.LSTM / nn.GRU modules as a cross-check), autograd for BPTT;
  * keras.layers.SimpleRNNCell / LSTMCell / GRUCell (reset_after both ways)
    stepped with stateless_call, jax.grad for BPTT (and the full Keras layers
    as a cross-check).
Where a case is expressible in both frameworks, the other one is run too and
must agree to 1e-10 (asserted here).

Install:  pip install numpy torch jax keras   (Keras 3, JAX backend)
Run:      KERAS_BACKEND=jax JAX_ENABLE_X64=1 python tests/reference/gen_optim_recurrent.py
Writes:   tests/fixtures/optim_cases.json, tests/fixtures/recurrent_cases.json

Fixture format: a list of {"name", "reference", "request", "expected"} where
"request" is the exact JSON body of POST /v1/optimizers/steps (resp.
/v1/recurrent) and "expected" holds the framework's numbers. Optimizer cases
with "model" instead of given gradients are driven by a gradient function
(run_with in Rust): "sigmoid_bce" (one sigmoid neuron, BCE on one sample) or
"quartic" (f = x^4 - 32x^2 + y^4 - 18y^2).
"""
import json
import math
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_ENABLE_X64", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402

jax.config.update("jax_enable_x64", True)
keras.config.set_floatx("float64")

# Keras 3.15's JAX `tanh` casts float64 input to float32 (its
# result_type("float64", float) is float32), which would make every Keras RNN
# reference float32-accurate only. Route it to jnp.tanh, which keeps float64.
from keras.src.backend.jax import numpy as _knp  # noqa: E402

_knp.tanh = lambda x: jnp.tanh(jnp.asarray(x))
torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
RNG = np.random.default_rng(20261127)


def close(a, b, tol=1e-10, what=""):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    err = np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(b))) if a.size else 0.0
    assert err < tol or np.max(np.abs(a - b)) < 1e-12, (what, err, a, b)


def r(x):
    """Rounded random numbers (exam-like, exactly representable in JSON)."""
    return [float(v) for v in np.round(x, 3)]


# ---------------------------------------------------------------------------
# Optimizers


def torch_opt(cfg, params):
    a = cfg["algorithm"]
    lr = cfg["lr"]
    if a == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.get("momentum", 0.0),
                               dampening=cfg.get("dampening", 0.0),
                               nesterov=cfg.get("nesterov", False),
                               weight_decay=cfg.get("weight_decay", 0.0))
    if a == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, lr_decay=cfg.get("lr_decay", 0.0),
                                   initial_accumulator_value=cfg.get("initial_accumulator_value", 0.0),
                                   eps=cfg.get("eps", 1e-10), weight_decay=cfg.get("weight_decay", 0.0))
    if a == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=cfg.get("alpha", 0.99), eps=cfg.get("eps", 1e-8),
                                   momentum=cfg.get("momentum", 0.0), centered=cfg.get("centered", False),
                                   weight_decay=cfg.get("weight_decay", 0.0))
    if a == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)),
                                eps=cfg.get("eps", 1e-8), amsgrad=cfg.get("amsgrad", False),
                                weight_decay=cfg.get("weight_decay", 0.0))
    if a == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)),
                                 eps=cfg.get("eps", 1e-8), amsgrad=cfg.get("amsgrad", False),
                                 weight_decay=cfg.get("weight_decay", 0.01))
    raise ValueError(a)


TORCH_STATE = {"momentum_buffer": "velocity", "exp_avg": "m", "exp_avg_sq": "v",
               "max_exp_avg_sq": "v_max", "sum": "accumulator", "square_avg": "square_avg",
               "grad_avg": "grad_avg"}


def run_torch_opt(cfg, params, grad_fn, steps):
    ps = [torch.tensor(p["values"], dtype=torch.float64, requires_grad=True) for p in params]
    opt = torch_opt(cfg, ps)
    hist = []
    for t in range(steps):
        loss, grads = grad_fn(ps)
        for p, g in zip(ps, grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        state = {}
        for p, pd in zip(ps, params):
            st = {}
            for k, v in opt.state[p].items():
                if k in TORCH_STATE and v is not None:
                    st[TORCH_STATE[k]] = [float(x) for x in v.detach().numpy().ravel()]
            if "m" in st:
                # Secondary (formula) check on the framework's moments: the bias-corrected values.
                b1, b2 = cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)
                vv = st.get("v_max", st["v"])
                st["m_hat"] = [x / (1 - b1 ** (t + 1)) for x in st["m"]]
                st["v_hat"] = [x / (1 - b2 ** (t + 1)) for x in vv]
            state[pd["name"]] = st
        rec = {"params": {pd["name"]: [float(x) for x in p.detach().numpy()] for p, pd in zip(ps, params)},
               "state": state}
        if loss is not None:
            rec["loss"] = loss
        hist.append(rec)
    return hist


def keras_opt(cfg):
    a = cfg["algorithm"]
    lr = cfg["lr"]
    wd = cfg.get("weight_decay")
    if a == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=cfg.get("momentum", 0.0),
                                    nesterov=cfg.get("nesterov", False), weight_decay=wd)
    if a == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, rho=cfg["alpha"], momentum=cfg.get("momentum", 0.0),
                                        epsilon=cfg["eps"], centered=cfg.get("centered", False), weight_decay=wd)
    if a == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=lr, initial_accumulator_value=cfg["initial_accumulator_value"],
                                        epsilon=cfg["eps"], weight_decay=wd)
    if a == "adam":
        return keras.optimizers.Adam(learning_rate=lr, beta_1=cfg.get("beta1", 0.9), beta_2=cfg.get("beta2", 0.999),
                                     epsilon=cfg["eps"], amsgrad=cfg.get("amsgrad", False), weight_decay=wd)
    if a == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, beta_1=cfg.get("beta1", 0.9), beta_2=cfg.get("beta2", 0.999),
                                      epsilon=cfg["eps"], amsgrad=cfg.get("amsgrad", False),
                                      weight_decay=cfg.get("weight_decay", 0.01))
    raise ValueError(a)


def keras_state(opt, var, a):
    i = opt._get_variable_index(var)
    out = {}

    def put(name, lst):
        if lst:
            out[name] = [float(x) for x in np.asarray(lst[i].value).ravel()]

    if a == "sgd":
        put("velocity", getattr(opt, "momentums", None))
    elif a == "rmsprop":
        put("square_avg", opt._velocities)
        put("velocity", getattr(opt, "_momentums", None))
        put("grad_avg", getattr(opt, "_average_gradients", None))
    elif a == "adagrad":
        put("accumulator", opt._accumulators)
    else:
        put("m", opt._momentums)
        put("v", opt._velocities)
        put("v_max", getattr(opt, "_velocity_hats", None))
    return out


def run_keras_opt(cfg, params, grad_fn, steps):
    vs = [keras.Variable(np.array(p["values"], dtype=np.float64), dtype="float64") for p in params]
    opt = keras_opt(cfg)
    hist = []
    for t in range(steps):
        loss, grads = grad_fn([torch.tensor(np.asarray(v.value)) for v in vs])
        opt.apply_gradients([(np.array(g, dtype=np.float64), v) for g, v in zip(grads, vs)])
        rec = {"params": {pd["name"]: [float(x) for x in np.asarray(v.value)] for v, pd in zip(vs, params)},
               "state": {pd["name"]: keras_state(opt, v, cfg["algorithm"]) for v, pd in zip(vs, params)}}
        if loss is not None:
            rec["loss"] = loss
        hist.append(rec)
    return hist


def given_grads(req):
    """grad_fn replaying the request's gradients."""
    k = {"i": 0}

    def f(_ps):
        if req.get("gradient") is not None:
            g = req["gradient"]
        else:
            g = req["gradients"][k["i"]]
        k["i"] += 1
        return None, [p["values"] for p in g]
    return f


def model_grads(model):
    def f(ps):
        ts = [p.detach().clone().requires_grad_(True) for p in ps]
        if model["kind"] == "sigmoid_bce":
            w, b = ts
            x = torch.tensor(model["x"])
            y = torch.tensor(model["y"])
            yhat = torch.sigmoid((w * x).sum() + b.sum())
            loss = torch.nn.functional.binary_cross_entropy(yhat, y)
        else:  # quartic
            x, y = ts
            loss = (x ** 4 - 32 * x ** 2 + y ** 4 - 18 * y ** 2).sum()
        loss.backward()
        return loss.item(), [[float(v) for v in t.grad.numpy()] for t in ts]
    return f


def params_of(shapes):
    names = ["w", "b", "u", "v"]
    return [{"name": names[i], "values": r(RNG.normal(0, 1, n))} for i, n in enumerate(shapes)]


def grads_like(params):
    return [{"name": p["name"], "values": r(RNG.normal(0, 1, len(p["values"])))} for p in params]


def optim_cases():
    cases = []

    def add(name, ref, req, hist, model=None):
        c = {"name": name, "reference": ref, "request": req, "expected": {"history": hist}}
        if model:
            c["model"] = model
        cases.append(c)

    def make_req(cfg, shapes, steps, mode):
        params = params_of(shapes)
        req = {"optimizer": cfg, "params": params}
        if mode == "constant":
            req["gradient"] = grads_like(params)
            req["steps"] = steps
        else:
            req["gradients"] = [grads_like(params) for _ in range(steps)]
        return req

    modes = ["constant", "per_step"]
    i = 0
    # ---- torch.optim
    torch_cfgs = []
    for lr in (0.1, 0.01):
        for mom, damp, nest in ((0.0, 0.0, False), (0.9, 0.0, False), (0.5, 0.3, False), (0.9, 0.0, True)):
            for wd in (0.0, 0.05):
                torch_cfgs.append({"algorithm": "sgd", "lr": lr, "momentum": mom, "dampening": damp,
                                   "nesterov": nest, "weight_decay": wd})
    for lr_decay in (0.0, 0.1):
        for acc in (0.0, 0.1):
            for eps in (1e-10, 0.1):
                torch_cfgs.append({"algorithm": "adagrad", "lr": 0.5, "lr_decay": lr_decay,
                                   "initial_accumulator_value": acc, "eps": eps})
    torch_cfgs.append({"algorithm": "adagrad", "lr": 0.1, "weight_decay": 0.1})
    for alpha in (0.99, 0.9):
        for centered in (False, True):
            for mom in (0.0, 0.9):
                torch_cfgs.append({"algorithm": "rmsprop", "lr": 0.01, "alpha": alpha, "eps": 1e-8 if mom else 0.01,
                                   "centered": centered, "momentum": mom})
    torch_cfgs.append({"algorithm": "rmsprop", "lr": 0.01, "weight_decay": 0.2})
    for b1, b2 in ((0.9, 0.999), (0.8, 0.99)):
        for ams in (False, True):
            for wd in (0.0, 0.1):
                torch_cfgs.append({"algorithm": "adam", "lr": 0.1, "beta1": b1, "beta2": b2, "amsgrad": ams,
                                   "weight_decay": wd, "eps": 1e-8 if wd else 0.01})
    for wd in (0.01, 0.1):
        for ams in (False, True):
            torch_cfgs.append({"algorithm": "adamw", "lr": 0.05, "weight_decay": wd, "amsgrad": ams})
    for cfg in torch_cfgs:
        cfg = {k: v for k, v in cfg.items() if not (v == 0.0 or v is False) or k in ("algorithm",)}
        steps = 1 + i % 5
        mode = modes[i % 2]
        shapes = [[1], [3], [2, 1], [4, 2, 1]][i % 4]
        req = make_req(cfg, shapes, steps, mode)
        hist = run_torch_opt(cfg, req["params"], given_grads(req), steps)
        add(f"torch_{cfg['algorithm']}_{i}", "torch.optim float64", req, hist)
        i += 1
    # ---- Keras 3 (JAX backend, float64)
    keras_cfgs = []
    for mom, nest in ((0.0, False), (0.9, False), (0.9, True), (0.5, True)):
        for wd in (None, 0.1):
            keras_cfgs.append({"algorithm": "sgd", "lr": 0.1, "momentum": mom, "nesterov": nest,
                               "momentum_convention": "classic", "weight_decay": wd})
    for rho in (0.9, 0.5):
        for mom in (0.0, 0.9):
            for centered in (False, True):
                keras_cfgs.append({"algorithm": "rmsprop", "lr": 0.01, "alpha": rho, "momentum": mom,
                                   "centered": centered, "eps": 1e-7, "eps_placement": "inside_sqrt",
                                   "momentum_convention": "classic"})
    for acc in (0.1, 0.0):
        for eps in (1e-7, 0.5):
            keras_cfgs.append({"algorithm": "adagrad", "lr": 0.1, "initial_accumulator_value": acc, "eps": eps,
                               "eps_placement": "inside_sqrt"})
    keras_cfgs.append({"algorithm": "adagrad", "lr": 0.1, "initial_accumulator_value": 0.1, "eps": 1e-7,
                       "eps_placement": "inside_sqrt", "weight_decay": 0.05, "weight_decay_mode": "decoupled"})
    for b1, b2 in ((0.9, 0.999), (0.5, 0.9)):
        for ams in (False, True):
            for eps in (1e-7, 0.1):
                keras_cfgs.append({"algorithm": "adam", "lr": 0.1, "beta1": b1, "beta2": b2, "amsgrad": ams,
                                   "eps": eps, "adam_eps_style": "keras"})
    keras_cfgs.append({"algorithm": "adam", "lr": 0.1, "eps": 1e-7, "adam_eps_style": "keras", "weight_decay": 0.05})
    keras_cfgs.append({"algorithm": "rmsprop", "lr": 0.01, "alpha": 0.9, "eps": 1e-7, "eps_placement": "inside_sqrt",
                       "weight_decay": 0.05})
    for wd in (0.004, 0.1):
        keras_cfgs.append({"algorithm": "adamw", "lr": 0.05, "weight_decay": wd, "eps": 1e-7,
                           "adam_eps_style": "keras"})
    for cfg in keras_cfgs:
        cfg = {k: v for k, v in cfg.items() if v is not None and not (v == 0.0 and k != "initial_accumulator_value")
               and v is not False}
        if "weight_decay" in cfg and cfg["algorithm"] != "adamw":
            cfg["weight_decay_mode"] = "decoupled"
        if cfg["algorithm"] == "adagrad" and cfg["initial_accumulator_value"] == 0.0:
            del cfg["initial_accumulator_value"]
        kcfg = dict(cfg)
        kcfg.setdefault("initial_accumulator_value", 0.0)
        steps = 1 + i % 5
        mode = modes[i % 2]
        shapes = [[1], [3], [2, 1], [4, 2, 1]][i % 4]
        req = make_req(cfg, shapes, steps, mode)
        hist = run_keras_opt(kcfg, req["params"], given_grads(req), steps)
        add(f"keras_{cfg['algorithm']}_{i}", "Keras 3 optimizers, JAX backend, float64", req, hist)
        i += 1
    # ---- cross-framework equalities (same numbers, other convention)
    # torch SGD momentum (dampening 0) == Keras SGD momentum, velocity scaled by -lr.
    cfg = {"algorithm": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}
    req = make_req(cfg, [3], 4, "per_step")
    ht = run_torch_opt(cfg, req["params"], given_grads(req), 4)
    hk = run_keras_opt(dict(cfg, momentum_convention="classic"), req["params"], given_grads(req), 4)
    for a, b in zip(ht, hk):
        close(a["params"]["w"], b["params"]["w"], what="torch vs keras nesterov")
    # ---- gradient-function cases (the exam staple)
    exam_model = {"kind": "sigmoid_bce", "x": [3.5], "y": 0.5}
    exam_params = [{"name": "w", "values": [-2.0]}, {"name": "b", "values": [-2.0]}]
    for style, ref_run, ref in (("pytorch", run_torch_opt, "torch.optim Adam + autograd"),
                                ("keras", run_keras_opt, "Keras 3 Adam (JAX) + torch autograd gradients")):
        cfg = {"algorithm": "adam", "lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "adam_eps_style": style}
        for steps in (1, 3):
            hist = ref_run(cfg, exam_params, model_grads(exam_model), steps)
            add(f"exam_bits_adam_sigmoid_bce_{style}_{steps}_steps", ref,
                {"optimizer": cfg, "params": exam_params, "steps": steps,
                 "expression": "model: sigmoid neuron, BCE, x = 3.5, y = 0.5"}, hist, exam_model)
    # TUM Problem 5 d): 1x1 conv kernel (1, 1, 1), dBCE/dw = (-3, 1, 0), gradient descent with lr 1.
    req = {"optimizer": {"algorithm": "sgd", "lr": 1.0}, "params": [{"name": "w", "values": [1.0, 1.0, 1.0]}],
           "gradient": [{"name": "w", "values": [-3.0, 1.0, 0.0]}], "steps": 1}
    add("exam_tum_p5d_conv_kernel_gradient_descent", "torch.optim.SGD float64", req,
        run_torch_opt(req["optimizer"], req["params"], given_grads(req), 1))
    quartic = {"kind": "quartic"}
    qp = [{"name": "x", "values": [2.0]}, {"name": "y", "values": [2.0]}]
    for cfg in ({"algorithm": "sgd", "lr": 0.01}, {"algorithm": "sgd", "lr": 0.01, "momentum": 0.9},
                {"algorithm": "adam", "lr": 0.1}, {"algorithm": "rmsprop", "lr": 0.05},
                {"algorithm": "adagrad", "lr": 0.5}):
        hist = run_torch_opt(cfg, qp, model_grads(quartic), 5)
        add(f"exam_bits_quartic_{cfg['algorithm']}_{len(cases)}", "torch.optim + autograd",
            {"optimizer": cfg, "params": qp, "steps": 5, "expression": "x^4 - 32*x^2 + y^4 - 18*y^2"}, hist, quartic)
    # Look-ahead Nesterov: the textbook loop, gradients by torch autograd at the look-ahead point.
    lr, mu = 0.01, 0.9
    x = np.array([2.0, 2.0])
    v = np.zeros(2)
    hist = []
    gf = model_grads(quartic)
    for t in range(4):
        look = x + mu * v
        loss, g = gf([torch.tensor([look[0]]), torch.tensor([look[1]])])
        g = np.array([g[0][0], g[1][0]])
        v = mu * v - lr * g
        x = x + v
        hist.append({"loss": loss, "params": {"x": [float(x[0])], "y": [float(x[1])]},
                     "state": {"x": {"velocity": [float(v[0])]}, "y": {"velocity": [float(v[1])]}}})
    add("quartic_nesterov_lookahead_classic", "textbook look-ahead loop + torch autograd",
        {"optimizer": {"algorithm": "sgd", "lr": lr, "momentum": mu, "nesterov": True,
                       "momentum_convention": "classic", "nesterov_formulation": "lookahead"},
         "params": qp, "steps": 4, "expression": "x^4 - 32*x^2 + y^4 - 18*y^2"}, hist, quartic)
    return cases


# ---------------------------------------------------------------------------
# Recurrent cells

G = {"rnn": 1, "lstm": 4, "gru": 3}


def canon(req, w):
    """Request weight set -> semantic gates (PyTorch order r,z,n / i,f,g,o), torch layout."""
    cell, fw = req["cell"], req.get("framework", "pytorch")
    g = G[cell]
    K = np.array(w["kernel"], dtype=np.float64)
    R = np.array(w["recurrent_kernel"], dtype=np.float64)
    if fw == "keras":
        K, R = K.T, R.T
    h = R.shape[1]
    gh = g * h
    bx = np.array(w["bias"]) if w.get("bias") is not None else np.zeros(gh)
    bh = np.array(w["recurrent_bias"]) if w.get("recurrent_bias") is not None else np.zeros(gh)
    if cell == "gru" and fw == "keras":  # z, r, h -> r, z, n
        perm = np.concatenate([np.arange(h, 2 * h), np.arange(0, h), np.arange(2 * h, 3 * h)])
        K, R, bx, bh = K[perm], R[perm], bx[perm], bh[perm]
    out = None
    if w.get("output_kernel") is not None:
        Wy = np.array(w["output_kernel"])
        if fw == "keras":
            Wy = Wy.T
        by = np.array(w["output_bias"]) if w.get("output_bias") is not None else np.zeros(Wy.shape[0])
        out = (Wy, by)
    return K, R, bx, bh, out


def keras_from_canon(req, c):
    """Semantic torch-layout weights -> Keras cell weights (kernel, recurrent_kernel, bias)."""
    cell = req["cell"]
    K, R, bx, bh, _ = c
    h = R.shape[1]
    if cell == "gru":
        perm = np.concatenate([np.arange(h, 2 * h), np.arange(0, h), np.arange(2 * h, 3 * h)])
        K, R, bx, bh = K[perm], R[perm], bx[perm], bh[perm]
        if req.get("reset_after", True):
            return [K.T, R.T, np.stack([bx, bh])]
        assert not np.any(bh)
        return [K.T, R.T, bx]
    return [K.T, R.T, bx + bh]


def torch_act(name):
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda x: x}[name]


def torch_ok(req):
    act = req.get("activation", "tanh")
    ract = req.get("recurrent_activation", "sigmoid")
    if req["cell"] == "rnn":
        return act in ("tanh", "relu")
    return act == "tanh" and ract == "sigmoid" and req.get("reset_after", True)


def keras_ok(req):
    # Keras has one bias for RNN/LSTM: the sum b_ih + b_hh is used (forward identical).
    return True


def loss_fn(req, ys, lib):
    spec = req.get("loss")
    if spec is None:
        return None
    tg = spec["targets"]
    kind = spec.get("kind", "mse")
    on = spec.get("on", "all_timesteps")
    T = len(ys)
    idx = list(range(T)) if on == "all_timesteps" else [T - 1]
    total = 0.0
    for k, t in enumerate(idx):
        target = lib.asarray([seq[k] for seq in tg]) if lib is jnp else torch.tensor([seq[k] for seq in tg])
        d = ys[t] - target
        if kind == "mse":
            total = total + (torch.nn.functional.mse_loss(ys[t], target) if lib is torch else jnp.mean(d * d))
        elif kind == "sse":
            total = total + (d * d).sum()
        else:
            total = total + 0.5 * (d * d).sum()
    return total


def run_torch_rnn(req):
    cell, fw = req["cell"], req.get("framework", "pytorch")
    sets = req.get("weights_per_step") or [req["weights"]]
    X = torch.tensor(req["inputs"], requires_grad=True)
    B, T, n_in = X.shape
    cells, outs, leaves = [], [], []
    for w in sets:
        K, R, bx, bh, out = canon(req, w)
        h = R.shape[1]
        if cell == "rnn":
            m = torch.nn.RNNCell(n_in, h, nonlinearity=req.get("activation", "tanh"))
        elif cell == "lstm":
            m = torch.nn.LSTMCell(n_in, h)
        else:
            m = torch.nn.GRUCell(n_in, h)
        with torch.no_grad():
            m.weight_ih.copy_(torch.tensor(K))
            m.weight_hh.copy_(torch.tensor(R))
            m.bias_ih.copy_(torch.tensor(bx))
            m.bias_hh.copy_(torch.tensor(bh))
        cells.append(m)
        lin = None
        if out is not None:
            lin = torch.nn.Linear(h, out[0].shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(out[0]))
                lin.bias.copy_(torch.tensor(out[1]))
        outs.append(lin)
    h = R.shape[1]
    h0 = torch.tensor(req["h0"] if req.get("h0") is not None else np.zeros((B, h)), requires_grad=True)
    c0 = torch.tensor(req["c0"] if req.get("c0") is not None else np.zeros((B, h)), requires_grad=True)
    hs, cs, ys = [], [], []
    hcur, ccur = h0, c0
    oact = torch_act(req.get("output_activation", "linear"))
    for t in range(T):
        m = cells[t if len(cells) > 1 else 0]
        lin = outs[t if len(outs) > 1 else 0]
        if cell == "lstm":
            hcur, ccur = m(X[:, t], (hcur, ccur))
            cs.append(ccur)
        else:
            hcur = m(X[:, t], hcur)
        hs.append(hcur)
        ys.append(oact(lin(hcur)) if lin is not None else hcur)
    # cross-check against the full-sequence module (tied weights only)
    if len(cells) == 1:
        mod = {"rnn": lambda: torch.nn.RNN(n_in, h, nonlinearity=req.get("activation", "tanh"), batch_first=True),
               "lstm": lambda: torch.nn.LSTM(n_in, h, batch_first=True),
               "gru": lambda: torch.nn.GRU(n_in, h, batch_first=True)}[cell]()
        with torch.no_grad():
            mod.weight_ih_l0.copy_(cells[0].weight_ih)
            mod.weight_hh_l0.copy_(cells[0].weight_hh)
            mod.bias_ih_l0.copy_(cells[0].bias_ih)
            mod.bias_hh_l0.copy_(cells[0].bias_hh)
            full = mod(X, (h0[None], c0[None]) if cell == "lstm" else h0[None])[0]
        close(full.numpy(), torch.stack(hs, 1).detach().numpy(), what="torch module vs cell")
    exp = {"h": np.stack([x.detach().numpy() for x in hs], 1).tolist()}
    if cell == "lstm":
        exp["c"] = np.stack([x.detach().numpy() for x in cs], 1).tolist()
    if outs[0] is not None:
        exp["y"] = np.stack([x.detach().numpy() for x in ys], 1).tolist()
    L = loss_fn(req, ys, torch)
    if L is not None:
        L.backward()
        exp["loss"] = L.item()
        gw = []
        for w, m, lin in zip(sets, cells, outs):
            gK, gR = m.weight_ih.grad.numpy(), m.weight_hh.grad.numpy()
            gbx, gbh = m.bias_ih.grad.numpy(), m.bias_hh.grad.numpy()
            assert fw == "pytorch"
            d = {"kernel": gK.tolist(), "recurrent_kernel": gR.tolist()}
            if w.get("bias") is not None:
                d["bias"] = gbx.tolist()
            if w.get("recurrent_bias") is not None:
                d["recurrent_bias"] = gbh.tolist()
            if lin is not None:
                d["output_kernel"] = lin.weight.grad.numpy().tolist()
                if w.get("output_bias") is not None:
                    d["output_bias"] = lin.bias.grad.numpy().tolist()
            gw.append(d)
        exp["grad_weights"] = gw
        exp["grad_h0"] = h0.grad.numpy().tolist()
        if cell == "lstm":
            exp["grad_c0"] = c0.grad.numpy().tolist()
        exp["grad_inputs"] = X.grad.numpy().tolist()
    return exp


def np_act(name, x):
    return {"tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "relu": lambda v: np.maximum(v, 0),
            "linear": lambda v: v}[name](x)


def formula_gates(req, exp):
    """Secondary check (numpy formula, not a framework): every gate value per
    timestep from the canonical weights and the framework's own h_{t-1}, c_{t-1}."""
    cell = req["cell"]
    sets = req.get("weights_per_step") or [req["weights"]]
    X = np.array(req["inputs"], dtype=np.float64)
    B, T, _ = X.shape
    H = np.array(exp["h"])
    h = H.shape[2]
    h0 = np.array(req["h0"]) if req.get("h0") is not None else np.zeros((B, h))
    act = req.get("activation", "tanh")
    ract = req.get("recurrent_activation", "sigmoid")
    names = {"rnn": ["h"], "lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}[cell]
    out = {n: np.zeros((B, T, h)) for n in names}
    if cell == "gru" and req.get("reset_after", True):
        out["hn"] = np.zeros((B, T, h))
    for t in range(T):
        K, R, bx, bh, _ = canon(req, sets[t if len(sets) > 1 else 0])
        hp = h0 if t == 0 else H[:, t - 1]
        x = X[:, t]
        for s, n in enumerate(names):
            sl = slice(s * h, (s + 1) * h)
            a = x @ K[sl].T + bx[sl]
            if cell == "gru" and n == "n":
                r_ = out["r"][:, t]
                if req.get("reset_after", True):
                    hn = hp @ R[sl].T + bh[sl]
                    out["hn"][:, t] = hn
                    a = a + r_ * hn
                else:
                    a = a + (r_ * hp) @ R[sl].T + bh[sl]
            else:
                a = a + hp @ R[sl].T + bh[sl]
            f = act if (cell == "rnn" or n in ("g", "n")) else ract
            out[n][:, t] = np_act(f, a)
    for n, v in out.items():
        if n == "h":
            close(v, H, tol=1e-9, what="formula rnn h")
    return {n: v.tolist() for n, v in out.items()}


def run_keras_rnn(req):
    cell, fw = req["cell"], req.get("framework", "pytorch")
    sets = req.get("weights_per_step") or [req["weights"]]
    X = np.array(req["inputs"], dtype=np.float64)
    B, T, n_in = X.shape
    act = req.get("activation", "tanh")
    ract = req.get("recurrent_activation", "sigmoid")
    reset_after = req.get("reset_after", True)
    oact = req.get("output_activation", "linear")
    cells, dens, tvs = [], [], []
    for w in sets:
        c = canon(req, w)
        h = c[1].shape[1]
        if cell == "rnn":
            kc = keras.layers.SimpleRNNCell(h, activation=act)
        elif cell == "lstm":
            kc = keras.layers.LSTMCell(h, activation=act, recurrent_activation=ract)
        else:
            kc = keras.layers.GRUCell(h, activation=act, recurrent_activation=ract, reset_after=reset_after)
        kc.build((None, n_in))
        if fw == "keras":
            kw = [np.array(w["kernel"]), np.array(w["recurrent_kernel"])]
            if cell == "gru" and reset_after:
                b0 = np.array(w["bias"]) if w.get("bias") is not None else np.zeros(3 * h)
                b1 = np.array(w["recurrent_bias"]) if w.get("recurrent_bias") is not None else np.zeros(3 * h)
                kw.append(np.stack([b0, b1]))
            else:
                bsum = np.zeros(G[cell] * h)
                for k in ("bias", "recurrent_bias"):
                    if w.get(k) is not None:
                        bsum = bsum + np.array(w[k])
                kw.append(bsum)
        else:
            kw = keras_from_canon(req, c)
        kc.set_weights(kw)
        cells.append(kc)
        den = None
        if c[4] is not None:
            den = keras.layers.Dense(c[4][0].shape[0], activation=oact)
            den.build((None, h))
            den.set_weights([c[4][0].T, c[4][1]])
        dens.append(den)
        tvs.append([v.value for v in kc.trainable_variables] + ([v.value for v in den.trainable_variables] if den else []))
    h0 = np.array(req["h0"]) if req.get("h0") is not None else np.zeros((B, h))
    c0 = np.array(req["c0"]) if req.get("c0") is not None else np.zeros((B, h))

    def forward(tvs, X, h0, c0):
        hcur, ccur = h0, c0
        hs, cs, ys = [], [], []
        for t in range(T):
            k = t if len(cells) > 1 else 0
            kc, den = cells[k], dens[k]
            nc = len(kc.trainable_variables)
            ntv = [v.value for v in kc.non_trainable_variables]
            states = [hcur, ccur] if cell == "lstm" else [hcur]
            (o, st), _ = kc.stateless_call(tvs[k][:nc], ntv, X[:, t], states)
            hcur = st[0]
            if cell == "lstm":
                ccur = st[1]
                cs.append(ccur)
            hs.append(hcur)
            if den is not None:
                y, _ = den.stateless_call(tvs[k][nc:], [], hcur)
                ys.append(y)
            else:
                ys.append(hcur)
        return hs, cs, ys

    hs, cs, ys = forward(tvs, X, h0, c0)
    if len(cells) == 1:
        kw = [v.value for v in cells[0].weights if v.trainable]
        layer = {"rnn": lambda: keras.layers.SimpleRNN(h, activation=act, return_sequences=True, unroll=True),
                 "lstm": lambda: keras.layers.LSTM(h, activation=act, recurrent_activation=ract, return_sequences=True, unroll=True),
                 "gru": lambda: keras.layers.GRU(h, activation=act, recurrent_activation=ract, reset_after=reset_after,
                                                 return_sequences=True, unroll=True)}[cell]()
        layer.build((None, T, n_in))
        layer.set_weights([np.asarray(v) for v in kw])
        init = [h0, c0] if cell == "lstm" else [h0]
        full = layer(X, initial_state=init)
        close(np.asarray(full), np.stack([np.asarray(x) for x in hs], 1), what="keras layer vs cell")
    exp = {"h": np.stack([np.asarray(x) for x in hs], 1).tolist()}
    if cell == "lstm":
        exp["c"] = np.stack([np.asarray(x) for x in cs], 1).tolist()
    if dens[0] is not None:
        exp["y"] = np.stack([np.asarray(x) for x in ys], 1).tolist()
    if req.get("loss") is not None:
        def lf(tvs, X, h0, c0):
            _, _, ys = forward(tvs, X, h0, c0)
            return loss_fn(req, ys, jnp)
        L = lf(tvs, X, h0, c0)
        gtv, gX, gh0, gc0 = jax.grad(lf, argnums=(0, 1, 2, 3))(tvs, X, h0, c0)
        exp["loss"] = float(L)
        assert fw == "keras"
        gw = []
        for w, g in zip(sets, gtv):
            d = {"kernel": np.asarray(g[0]).tolist(), "recurrent_kernel": np.asarray(g[1]).tolist()}
            gb = np.asarray(g[2])
            if cell == "gru" and reset_after:
                if w.get("bias") is not None:
                    d["bias"] = gb[0].tolist()
                if w.get("recurrent_bias") is not None:
                    d["recurrent_bias"] = gb[1].tolist()
            else:
                for k in ("bias", "recurrent_bias"):
                    if w.get(k) is not None:
                        d[k] = gb.tolist()
            if len(g) > 3:
                d["output_kernel"] = np.asarray(g[3]).tolist()
                if w.get("output_bias") is not None:
                    d["output_bias"] = np.asarray(g[4]).tolist()
            gw.append(d)
        exp["grad_weights"] = gw
        exp["grad_h0"] = np.asarray(gh0).tolist()
        if cell == "lstm":
            exp["grad_c0"] = np.asarray(gc0).tolist()
        exp["grad_inputs"] = np.asarray(gX).tolist()
    return exp


def rand_weights(cell, fw, n_in, h, n_out, bias, rbias, scale=0.6):
    g = G[cell]
    if fw == "pytorch":
        K, R = RNG.normal(0, scale, (g * h, n_in)), RNG.normal(0, scale, (g * h, h))
    else:
        K, R = RNG.normal(0, scale, (n_in, g * h)), RNG.normal(0, scale, (h, g * h))
    w = {"kernel": [r(row) for row in K], "recurrent_kernel": [r(row) for row in R]}
    if bias:
        w["bias"] = r(RNG.normal(0, 0.3, g * h))
    if rbias:
        w["recurrent_bias"] = r(RNG.normal(0, 0.3, g * h))
    if n_out:
        Wy = RNG.normal(0, 0.6, (n_out, h) if fw == "pytorch" else (h, n_out))
        w["output_kernel"] = [r(row) for row in Wy]
        w["output_bias"] = r(RNG.normal(0, 0.3, n_out))
    return w


def recurrent_cases():
    cases = []

    def add(name, req, primary=None):
        fw = req.get("framework", "pytorch")
        refs = []
        exp = None
        t_ok, k_ok = torch_ok(req), keras_ok(req)
        if fw == "pytorch" and t_ok:
            exp = run_torch_rnn(req)
            refs.append("torch.nn cells + autograd, float64")
            if k_ok:
                kreq = dict(req)
                kreq.pop("loss", None)
                ke = run_keras_rnn(kreq)
                close(ke["h"], exp["h"], what=name + " keras vs torch h")
                refs.append("Keras 3 cells agree (forward)")
        elif fw == "keras" or not t_ok:
            if fw == "pytorch":
                assert req.get("loss") is None, name
            exp = run_keras_rnn(req)
            refs.append("Keras 3 cells (JAX) + jax.grad, float64")
            if t_ok:
                treq = dict(req)
                treq.pop("loss", None)
                te = run_torch_rnn(treq)
                close(te["h"], exp["h"], what=name + " torch vs keras h")
                if "c" in exp:
                    close(te["c"], exp["c"], what=name + " torch vs keras c")
                refs.append("torch.nn cells agree (forward)")
        exp["gates"] = formula_gates(req, exp)
        refs.append("gates: numpy formula on the framework's states")
        cases.append({"name": name, "reference": "; ".join(refs), "request": req, "expected": exp})

    n = 0
    for cell in ("rnn", "lstm", "gru"):
        for fw in ("pytorch", "keras"):
            variants = [None, True] if cell == "gru" and fw == "keras" else [None]
            if cell == "gru" and fw == "keras":
                variants = [True, False]
            for ra in variants:
                for k in range(8):
                    n_in, h = [(1, 1), (2, 2), (3, 2), (2, 3), (1, 2), (3, 1), (2, 2), (4, 3)][k]
                    B, T = [(1, 3), (2, 4), (1, 5), (3, 2), (2, 1), (1, 4), (2, 3), (1, 6)][k]
                    n_out = [0, 1, 0, 2, 0, 1, 0, 0][k]
                    bias = k != 4
                    rbias = (fw == "pytorch" or (cell == "gru" and ra)) and k % 3 != 2
                    if cell == "gru" and ra is False:
                        rbias = False
                    req = {"cell": cell, "framework": fw, "inputs": [[r(RNG.normal(0, 1, n_in)) for _ in range(T)]
                                                                      for _ in range(B)]}
                    untied = k == 6
                    if untied:
                        req["weights_per_step"] = [rand_weights(cell, fw, n_in, h, n_out, bias, rbias) for _ in range(T)]
                    else:
                        req["weights"] = rand_weights(cell, fw, n_in, h, n_out, bias, rbias)
                    if k % 2 == 1:
                        req["h0"] = [r(RNG.normal(0, 0.5, h)) for _ in range(B)]
                        if cell == "lstm":
                            req["c0"] = [r(RNG.normal(0, 0.5, h)) for _ in range(B)]
                    if ra is not None:
                        req["reset_after"] = ra
                    if cell == "rnn" and k == 5:
                        req["activation"] = "relu"
                    if cell == "rnn" and k == 7:
                        req["activation"] = "sigmoid"
                    if cell != "rnn" and k == 7 and fw == "keras":
                        req["activation"] = "relu"
                        req["recurrent_activation"] = "tanh" if cell == "lstm" else "sigmoid"
                    if n_out:
                        req["output_activation"] = ["linear", "sigmoid", "tanh", "relu"][k % 4] if k % 4 != 2 else "tanh"
                    out_size = n_out or h
                    on = "last_timestep" if k % 4 == 3 else "all_timesteps"
                    tt = 1 if on == "last_timestep" else T
                    kind = ["mse", "sse", "half_sse"][k % 3]
                    with_loss = not (fw == "pytorch" and not torch_ok(req))
                    if with_loss and k != 0:
                        req["loss"] = {"targets": [[r(RNG.normal(0, 1, out_size)) for _ in range(tt)] for _ in range(B)],
                                       "on": on, "kind": kind}
                    name = f"{cell}_{fw}{'' if ra is None else '_reset_after_' + str(ra).lower()}_{k}"
                    add(name, req)
                    n += 1
    # Random larger batch cases for coverage.
    for j in range(24):
        cell = ["rnn", "lstm", "gru"][j % 3]
        fw = ["pytorch", "keras"][(j // 3) % 2]
        n_in, h, B, T = 1 + j % 4, 1 + (j * 7) % 4, 1 + j % 3, 2 + j % 5
        ra = None
        if cell == "gru" and fw == "keras":
            ra = j % 2 == 0
        rbias = (fw == "pytorch" or (cell == "gru" and ra))
        req = {"cell": cell, "framework": fw,
               "inputs": [[r(RNG.normal(0, 1, n_in)) for _ in range(T)] for _ in range(B)],
               "weights": rand_weights(cell, fw, n_in, h, 0, True, rbias, scale=0.9),
               "h0": [r(RNG.normal(0, 0.5, h)) for _ in range(B)]}
        if ra is not None:
            req["reset_after"] = ra
        req["loss"] = {"targets": [[r(RNG.normal(0, 1, h)) for _ in range(T)] for _ in range(B)]}
        add(f"random_{cell}_{fw}_{j}", req)
    # ---- exam questions
    # BITS EC3 2(b): 2 tanh units, input [0.5, 0.6], h0 [0.3, 0.4], all weights/biases 0.2, sigmoid output.
    add("exam_bits_ec3_2b_rnn_tanh_sigmoid_output", {
        "cell": "rnn", "framework": "keras", "inputs": [[[0.5, 0.6]]],
        "weights": {"kernel": [[0.2, 0.2], [0.2, 0.2]], "recurrent_kernel": [[0.2, 0.2], [0.2, 0.2]],
                    "bias": [0.2, 0.2], "output_kernel": [[0.2], [0.2]], "output_bias": [0.2]},
        "h0": [[0.3, 0.4]], "output_activation": "sigmoid"})
    # Same in the PyTorch convention (b_ih = 0.2, b_hh = 0: one bias of 0.2 per unit).
    add("exam_bits_ec3_2b_rnn_pytorch_layout", {
        "cell": "rnn", "inputs": [[[0.5, 0.6]]],
        "weights": {"kernel": [[0.2, 0.2], [0.2, 0.2]], "recurrent_kernel": [[0.2, 0.2], [0.2, 0.2]],
                    "bias": [0.2, 0.2], "output_kernel": [[0.2, 0.2]], "output_bias": [0.2]},
        "h0": [[0.3, 0.4]], "output_activation": "sigmoid"})
    # BITS sample RNN: x = [1, 1, 0], s_t = sigmoid(U x_t + W s_{t-1}), y_t = relu(V s_t); the printed
    # solution uses a different (U, W, V) at each timestep: untied weights.
    U, W, V = [0.5, 0.6, 0.2], [0.2, 0.3, 0.8], [0.4, 0.2, 0.1]
    add("exam_bits_sample_rnn_untied_sigmoid_relu", {
        "cell": "rnn", "framework": "keras", "inputs": [[[1.0], [1.0], [0.0]]],
        "weights_per_step": [{"kernel": [[U[t]]], "recurrent_kernel": [[W[t]]], "output_kernel": [[V[t]]]}
                             for t in range(3)],
        "activation": "sigmoid", "output_activation": "relu"})
    # Shared-weights reading of the same question (U = 0.5, W = 0.2, V = 0.4 at every step).
    add("exam_bits_sample_rnn_tied_sigmoid_relu", {
        "cell": "rnn", "framework": "keras", "inputs": [[[1.0], [1.0], [0.0]]],
        "weights": {"kernel": [[0.5]], "recurrent_kernel": [[0.2]], "output_kernel": [[0.4]]},
        "activation": "sigmoid", "output_activation": "relu"})
    # BITS sample LSTM: per-timestep (untied) scalar weights; candidate weights W, U; gates (W_g, U_g).
    Wo, Uo = [0.9, 0.1, 0.3], [0.4, 0.3, 0.2]
    Wi, Ui = [0.1, 0.4, 0.2], [0.9, 0.1, 0.3]
    Wf, Uf = [0.5, 0.3, 0.2], [0.6, 0.2, 0.3]
    for act in ("tanh", "sigmoid"):
        req = {"cell": "lstm", "framework": "keras", "inputs": [[[1.0], [1.0], [0.0]]],
               "weights_per_step": [{"kernel": [[Ui[t], Uf[t], U[t], Uo[t]]],
                                     "recurrent_kernel": [[Wi[t], Wf[t], W[t], Wo[t]]],
                                     "output_kernel": [[V[t]]]} for t in range(3)],
               "activation": act, "output_activation": "relu"}
        add(f"exam_bits_sample_lstm_untied_{act}", req)
    return cases


def main():
    os.makedirs(FIX, exist_ok=True)
    oc = optim_cases()
    with open(os.path.join(FIX, "optim_cases.json"), "w") as f:
        json.dump(oc, f, indent=1)
    rc = recurrent_cases()
    with open(os.path.join(FIX, "recurrent_cases.json"), "w") as f:
        json.dump(rc, f, indent=1)
    print(f"{len(oc)} optimizer cases, {len(rc)} recurrent cases", file=sys.stderr)


if __name__ == "__main__":
    main()
