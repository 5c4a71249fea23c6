#!/usr/bin/env python3
"""Golden fixtures for src/compute/expr/ (calculus) and src/compute/perceptron.rs.

Runs the REAL references:
  * SymPy: symbolic gradient and Hessian, evaluated with 30 significant digits;
    the derivative expressions themselves (printed, translated to dlgrade's
    syntax) so the Rust test can parse SymPy's derivative and compare it with
    its own at the same points; exact real roots of separable polynomial
    gradients (critical points).
  * JAX (float64): jax.grad / jax.hessian of the same function, which must
    agree with SymPy to 1e-9 (asserted here; points where they do not, such
    as kinks or domain edges, are dropped).
  * Perceptron: a straightforward loop implementation of the perceptron rule
    (the textbook algorithm, written independently of the Rust code) and
    scipy.optimize.linprog for linear separability (an LP feasibility
    problem: s_i (w.x_i + b) >= 1).

Install:  pip install numpy sympy jax scipy
Run:      JAX_ENABLE_X64=1 python tests/reference/gen_calculus.py
Writes:   tests/fixtures/calculus_cases.json, tests/fixtures/perceptron_cases.json

Calculus fixture: a list of {"name", "source", "request", "expected"} where
"request" is a POST /v1/calculus body and "expected" holds
{"variables", "points": [{"value", "gradient", "hessian", "classification"}],
 "sympy_gradient": [text or null], "critical_points": [...] or null}.
Expressions are written so that one string is both dlgrade syntax and Python
(`**`, explicit `*`) unless a separate "python" twin is given (implicit
multiplication, unicode, `^`).
"""
import functools
import json
import math
import os
import random
import re
import sys

os.environ.setdefault("JAX_ENABLE_X64", "1")

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from scipy.optimize import linprog  # noqa: E402

jax.config.update("jax_enable_x64", True)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
TOL = 1e-9

# --------------------------------------------------------------------------
# Namespaces: the same expression string evaluated by SymPy and by JAX.
# --------------------------------------------------------------------------

NAMES = ["x", "y", "z", "r", "w", "b", "w0", "w1", "w2", "w3", "w4", "b1", "b2", "b3"]
SYMS = {n: sp.Symbol(n, real=True) for n in NAMES}


def sympy_ns():
    ns = dict(SYMS)
    ns.update(
        exp=sp.exp,
        ln=sp.log,
        log=sp.log,
        log10=lambda u: sp.log(u, 10),
        log2=lambda u: sp.log(u, 2),
        sqrt=sp.sqrt,
        sin=sp.sin,
        cos=sp.cos,
        tan=sp.tan,
        tanh=sp.tanh,
        sigmoid=lambda u: 1 / (1 + sp.exp(-u)),
        relu=lambda u: sp.Max(0, u),
        abs=sp.Abs,
        softplus=lambda u: sp.log(1 + sp.exp(u)),
        max=sp.Max,
        min=sp.Min,
        pi=sp.pi,
        e=sp.E,
    )
    return ns


def jax_ns(values):
    ns = dict(values)
    ns.update(
        exp=jnp.exp,
        ln=jnp.log,
        log=jnp.log,
        log10=jnp.log10,
        log2=jnp.log2,
        sqrt=jnp.sqrt,
        sin=jnp.sin,
        cos=jnp.cos,
        tan=jnp.tan,
        tanh=jnp.tanh,
        sigmoid=jax.nn.sigmoid,
        relu=jax.nn.relu,
        abs=jnp.abs,
        softplus=jax.nn.softplus,
        max=lambda *a: functools.reduce(jnp.maximum, a),
        min=lambda *a: functools.reduce(jnp.minimum, a),
        pi=jnp.pi,
        e=jnp.e,
    )
    return ns


def to_python(src):
    """dlgrade syntax with ^ / implicit products is given a twin by hand; this
    only maps ^ to ** for the simple cases."""
    return src.replace("^", "**")


SYMPY_TO_DLGRADE = [
    (r"\bAbs\(", "abs("),
    (r"\bMax\(", "max("),
    (r"\bMin\(", "min("),
    (r"\bHeaviside\(", "step("),
    (r"\bE\b", "e"),
    (r"\blog\(", "ln("),
]
ALLOWED_FUNCS = {"exp", "ln", "sqrt", "sin", "cos", "tan", "tanh", "abs", "max", "min",
                 "step", "sign", "pi", "e"}


def sympy_text(expr):
    """SymPy's expression printed in dlgrade syntax, or None if it uses a
    function dlgrade does not have (e.g. DiracDelta)."""
    s = sp.sstr(expr)
    for pat, rep in SYMPY_TO_DLGRADE:
        s = re.sub(pat, rep, s)
    for name in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", s):
        if name not in ALLOWED_FUNCS and name not in NAMES:
            return None
    return s


def hp(expr, subs):
    """High-precision real value of a SymPy expression, or None."""
    v = sp.N(expr.subs(subs), 30)
    if v.has(sp.zoo, sp.oo, -sp.oo, sp.nan) or not v.is_number:
        return None
    c = complex(v)
    if c.imag != 0 or not math.isfinite(c.real):
        return None
    return c.real


def close(a, b, tol=TOL):
    return abs(a - b) <= tol * max(1.0, abs(b))


def classify(grad, hess, point, tol=TOL):
    """Mirror of the documented rule (numpy eigvalsh for the eigenvalues)."""
    h = np.array(hess, dtype=float)
    h_max = float(np.max(np.abs(h))) if h.size else 0.0
    x_max = max([1.0] + [abs(p) for p in point])
    g_tol = tol * max(h_max * x_max, 1.0)
    if any(abs(g) > g_tol for g in grad):
        return "not_critical"
    if h.size == 0:
        return "degenerate"
    ev = np.linalg.eigvalsh(h)
    l_tol = tol * max([1.0] + [abs(l) for l in ev])
    pos = int(np.sum(ev > l_tol))
    neg = int(np.sum(ev < -l_tol))
    n = len(ev)
    if pos == n:
        return "local_minimum"
    if neg == n:
        return "local_maximum"
    if pos > 0 and neg > 0:
        return "saddle_point"
    return "degenerate"


class Case:
    def __init__(self, name, src, points=None, python=None, critical=False, source="hand-picked"):
        self.name = name
        self.src = src
        self.python = python or to_python(src)
        self.points = points
        self.critical = critical
        self.source = source


def analyse(case, rng):
    f = eval(case.python, sympy_ns())  # noqa: S307 - our own expression strings
    f = sp.sympify(f)
    # every variable written in the source, even if SymPy cancels it (dlgrade
    # differentiates by each of them; the derivative is then 0)
    variables = sorted(set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", case.python)) & set(NAMES))
    vs = [SYMS[v] for v in variables]
    grad = [sp.diff(f, v) for v in vs]
    hess = [[sp.diff(g, v) for v in vs] for g in grad]

    def jf(arr):
        vals = {v: arr[i] for i, v in enumerate(variables)}
        return eval(case.python, jax_ns(vals))  # noqa: S307

    jgrad = jax.grad(jf) if variables else None
    jhess = jax.hessian(jf) if variables else None

    candidates = case.points
    if candidates is None:
        candidates = [[round(rng.uniform(-1.6, 1.6), 3) for _ in variables] for _ in range(12)]
    points = []
    for pt in candidates:
        subs = dict(zip(vs, [sp.Rational(str(p)) for p in pt]))
        val = hp(f, subs)
        if val is None:
            continue
        g = [hp(e, subs) for e in grad]
        h = [[hp(e, subs) for e in row] for row in hess]
        if any(x is None for x in g) or any(x is None for row in h for x in row):
            continue
        # stay away from kinks: the extremal argument of max/min (and relu's
        # max(0, u)) must beat the runner-up by 1e-3, |u| >= 1e-3 for abs
        near_kink = False
        for k in sp.preorder_traversal(f):
            if isinstance(k, sp.Abs):
                v = hp(k.args[0], subs)
                near_kink |= v is None or abs(v) < 1e-3
            elif isinstance(k, (sp.Max, sp.Min)):
                vals = [hp(a, subs) for a in k.args]
                if any(v is None for v in vals):
                    near_kink = True
                    continue
                vals.sort(reverse=isinstance(k, sp.Max))
                near_kink |= len(vals) > 1 and abs(vals[0] - vals[1]) < 1e-3
        if near_kink and case.points is None:
            continue
        if variables:
            arr = jnp.array([float(p) for p in pt], dtype=jnp.float64)
            jv = float(jf(arr))
            jg = [float(x) for x in jgrad(arr)]
            jh = [[float(x) for x in row] for row in np.atleast_2d(np.array(jhess(arr)))]
            ok = close(jv, val, 1e-9) and all(close(a, b, 1e-9) for a, b in zip(jg, g)) and all(
                close(a, b, 1e-8) for ra, rb in zip(jh, h) for a, b in zip(ra, rb)
            )
            if not ok:
                if case.points is not None:
                    raise SystemExit(f"JAX and SymPy disagree on {case.name} at {pt}: {jv} {jg} {jh} vs {val} {g} {h}")
                continue
        points.append({
            "point": dict(zip(variables, [float(p) for p in pt])),
            "value": val,
            "gradient": g,
            "hessian": h,
            "classification": classify(g, h, [float(p) for p in pt]),
        })
        if case.points is None and len(points) == 2:
            break
    if not points and variables:
        return None
    crit = None
    if case.critical:
        crit = critical_points(f, vs, variables)
    request = {"expression": case.src, "points": [p["point"] for p in points]}
    if not variables:
        request["points"] = [{}]
        points = [{"point": {}, "value": hp(f, {}), "gradient": [], "hessian": [],
                   "classification": "degenerate"}]
    if case.critical:
        request["critical_points"] = True
    return {
        "name": case.name,
        "source": case.source,
        "request": request,
        "expected": {
            "variables": variables,
            "points": points,
            "sympy_gradient": [sympy_text(g) for g in grad],
            "critical_points": crit,
        },
    }


def critical_points(f, vs, variables):
    """Real solutions of grad f = 0: per variable (exact real roots) when the
    equations separate, else SymPy's solve of the polynomial system."""
    import itertools

    grads = [sp.diff(f, v) for v in vs]
    if all(g.free_symbols <= {v} for g, v in zip(grads, vs)):
        roots = []
        for g, v in zip(grads, vs):
            rr = sp.Poly(g, v).real_roots()
            roots.append(sorted({float(sp.N(r, 30)) for r in rr}))
        combos = list(itertools.product(*roots))
    else:
        combos = []
        for sol in sp.solve(grads, vs, dict=True):
            vals = [complex(sp.N(sol[v], 30)) for v in vs]
            if all(abs(c.imag) < 1e-20 for c in vals):
                combos.append(tuple(c.real for c in vals))
    out = []
    for combo in combos:
        subs = dict(zip(vs, [sp.Float(c, 30) for c in combo]))
        g = [hp(sp.diff(f, v), subs) for v in vs]
        h = [[hp(sp.diff(f, a, b), subs) for b in vs] for a in vs]
        out.append({
            "point": dict(zip(variables, combo)),
            "classification": classify(g, h, list(combo)),
        })
    return out


HAND = [
    # the exam's function (question 5) at the asked point and at every critical point
    Case("exam_quartic", "x^4 - 32x^2 + y^4 - 18y^2",
         python="x**4 - 32*x**2 + y**4 - 18*y**2",
         points=[[2, 2], [0, 0], [4, 3], [-4, 3], [4, -3], [-4, -3], [4, 0], [-4, 0], [0, 3], [0, -3]],
         critical=True, source="exam: f = x^4 - 32x^2 + y^4 - 18y^2"),
    Case("exam_bce_1x1_conv", "-ln(2w1 - 1.5w2) - ln(-0.5w1 + w2)",
         python="-ln(2*w1 - 1.5*w2) - ln(-0.5*w1 + w2)", points=[[1, 1], [2, 1.5]],
         source="exam: BCE of the 1x1 convolution (printed gradient -3, 1)"),
    Case("exam_skip_connection",
         "relu(relu(w2*relu(w1*relu(w0*x) + x))*w3 + relu(w1*relu(w0*x) + x))",
         points=[[0.5, 0.8, 1.2, 0.7, 1.5], [0.3, -0.4, 0.9, 1.1, 2.0]],
         source="exam: ResNet block dz/dw0"),
    Case("exam_two_neuron_mse",
         "(1.25 - sigmoid(w3*sigmoid(w1*x + b1) + w4*sigmoid(w2*x + b2) + b3))^2 / 2",
         python="(1.25 - sigmoid(w3*sigmoid(w1*x + b1) + w4*sigmoid(w2*x + b2) + b3))**2 / 2",
         points=[[0.1, -0.2, 0.3, 0.5, -0.6, 0.7, -0.8, 0.75]],
         source="exam: 1-2-1 sigmoid network, MSE to 1.25"),
    Case("exam_residual", "x + r*x", python="x + r*x", points=None, source="exam: H(x) = x + R(x)"),
    Case("const_2log2", "2 log 2", python="2*ln(2)", source="exam: 2 log 2"),
    Case("const_ln4", "ln 4", python="ln(4)"),
    Case("bowl_min", "x^2 + y^2", python="x**2 + y**2", points=[[0, 0], [1, -2]], critical=True),
    Case("cap_max", "-x^2 - y^2", python="-x**2 - y**2", points=[[0, 0]], critical=True),
    Case("saddle", "x^2 - y^2", python="x**2 - y**2", points=[[0, 0]], critical=True),
    Case("degenerate_quartic", "x^4 + y^4", python="x**4 + y**4", points=[[0, 0]], critical=True),
    Case("degenerate_mixed", "x^4 + y^2", python="x**4 + y**2", points=[[0, 0]], critical=True),
    Case("cubic_and_square", "x^3 - 3x + y^2", python="x**3 - 3*x + y**2",
         points=[[1, 0], [-1, 0]], critical=True),
    Case("two_cubics", "x^3 - 12x + y^3 - 3y", python="x**3 - 12*x + y**3 - 3*y",
         points=[[2, 1], [-2, -1], [2, -1]], critical=True),
    Case("quartic_1d", "x^4 - 2x^2", python="x**4 - 2*x**2", points=[[1], [0], [-1]], critical=True),
    Case("irrational_roots", "x^4 - 3x^2 + x", python="x**4 - 3*x**2 + x", points=[[0.5]], critical=True),
    Case("inflection", "x^3", python="x**3", points=[[0], [1]], critical=True),
    Case("three_vars", "x^2 + 2y^2 - 3z^2 + 4x", python="x**2 + 2*y**2 - 3*z**2 + 4*x",
         points=[[-2, 0, 0]], critical=True),
    Case("cross_term", "x*y", points=[[0, 0], [1, 2]], critical=True),
    Case("coupled_min", "x^2 + x*y + y^2", python="x**2 + x*y + y**2", points=[[0, 0], [1, 1]],
         critical=True),
    Case("folium", "x^3 + y^3 - 3x y", python="x**3 + y**3 - 3*x*y", points=[[1, 1], [0, 0]],
         critical=True, source="textbook: critical points by elimination"),
    Case("quartic_coupled", "x^4 + y^4 - 4x y + 1", python="x**4 + y**4 - 4*x*y + 1",
         points=[[1, 1], [-1, -1], [0, 0]], critical=True),
    Case("elimination_irrational", "x^2 y - x^2 - y^2", python="x**2*y - x**2 - y**2",
         points=[[0, 0]], critical=True),
    Case("rosenbrock", "(1 - x)^2 + 100(y - x^2)^2", python="(1 - x)**2 + 100*(y - x**2)**2",
         points=[[1, 1], [-1.2, 1]]),
    Case("unicode_sqrt", "√(x² + y²)", python="sqrt(x**2 + y**2)", points=[[3, 4], [1, 1]]),
    Case("unicode_sigma", "σ(w·x + b)", python="sigmoid(w*x + b)", points=[[0.5, 2, -0.3]]),
    Case("unicode_minus_times", "3 × x − 2 · y", python="3*x - 2*y", points=[[1, 2]]),
    Case("gaussian", "e^(-x^2)", python="e**(-x**2)", points=[[0.3], [-1.1]]),
    Case("implicit_products", "2x^2 + 3x y - y", python="2*x**2 + 3*x*y - y", points=[[1, -1]]),
    Case("bare_log", "ln x + 2 log y", python="ln(x) + 2*ln(y)", points=[[2, 3]]),
    Case("softmax_ce", "-ln(exp(x)/(exp(x) + exp(y) + exp(z)))", points=None),
    Case("log_bases", "log10(x) + log2(y)", points=[[2, 8], [0.5, 0.25]]),
    Case("trig_mix", "sin(x)*cos(y) + tan(x*y)", points=[[0.3, 0.7], [1.1, -0.4]]),
    Case("tanh_neuron", "tanh(w*x + b)", points=[[0.4, 1.5, -0.2]]),
    Case("relu_neuron", "relu(w*x + b)", points=[[0.4, 1.5, -0.2], [-0.4, 1.5, -0.2]]),
    Case("softplus_neuron", "softplus(w*x + b)", points=[[0.4, 1.5, -0.2]]),
    Case("max3", "max(x, y, x*y)", points=[[0.5, 2], [-1, -2], [1.5, 0.2]]),
    Case("min3", "min(x**2, y, 1)", points=[[0.5, 2], [2, 1.5], [0.3, -1]]),
    Case("abs_mix", "abs(x - y) + abs(x)", points=[[0.5, 2], [-1, -2]]),
    Case("power_tower", "x**y", points=[[1.5, 2.5], [0.7, -1.3]]),
    Case("exp_base", "2**x + x**3.5", points=[[1.2], [0.4]]),
    Case("quotient", "(x + 1)/(x**2 + y**2 + 1)", points=[[0.3, -0.8]]),
    Case("bce_neuron", "-(y*ln(sigmoid(w*x + b)) + (1 - y)*ln(1 - sigmoid(w*x + b)))",
         points=[[0.3, 1.2, 1, -0.5], [0.3, 1.2, 0, -0.5]]),
    Case("sqrt_chain", "sqrt(1 + sqrt(x**2 + 1))", points=[[0.7], [-2]]),
]

FUNCS1 = ["exp", "ln", "log10", "log2", "sqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu",
          "abs", "softplus"]


def random_expr(rng, depth, variables):
    if depth == 0 or rng.random() < 0.25:
        r = rng.random()
        if r < 0.6:
            return rng.choice(variables)
        if r < 0.9:
            return str(rng.choice([0.5, 1, 2, 3, 1.5, 0.25, 4]))
        return rng.choice(["pi", "e"])
    r = rng.random()
    a = random_expr(rng, depth - 1, variables)
    b = random_expr(rng, depth - 1, variables)
    if r < 0.2:
        return f"({a} + {b})"
    if r < 0.3:
        return f"({a} - {b})"
    if r < 0.45:
        return f"{a}*{b}"
    if r < 0.55:
        return f"{a}/({b} + 3)"
    if r < 0.65:
        return f"({a})**{rng.choice([2, 3, 4, 0.5, -1])}"
    if r < 0.95:
        f = rng.choice(FUNCS1)
        if f in ("ln", "log10", "log2", "sqrt"):
            return f"{f}(({a})**2 + 0.5)"
        if f == "tan":
            return f"tan(({a})/5)"
        if f == "exp":
            return f"exp(({a})/3)"
        return f"{f}({a})"
    f = rng.choice(["max", "min"])
    return f"{f}({a}, {b})"


def calculus_cases():
    rng = random.Random(20261127)
    cases = []
    for c in HAND:
        print(c.name, file=sys.stderr)
        out = analyse(c, rng)
        if out is None:
            raise SystemExit(f"no usable point for {c.name}")
        cases.append(out)
    # every single-argument function on its own, then random compositions
    for f in FUNCS1:
        arg = "x**2 + 0.5" if f in ("ln", "log10", "log2", "sqrt") else "x*y - 0.3"
        out = analyse(Case(f"func_{f}", f"{f}({arg})", source="every function"), rng)
        if out:
            cases.append(out)
    n = 0
    attempts = 0
    while n < 130 and attempts < 2000:
        attempts += 1
        variables = rng.choice([["x"], ["x", "y"], ["x", "y", "z"]])
        src = random_expr(rng, rng.choice([2, 3, 4]), variables)
        try:
            f = sp.sympify(eval(src, sympy_ns()))  # noqa: S307
        except (ZeroDivisionError, TypeError):
            continue
        if not f.free_symbols or f.has(sp.zoo, sp.nan):
            continue
        out = analyse(Case(f"random_{n:03d}", src, source="random"), rng)
        if out is None:
            continue
        cases.append(out)
        n += 1
        if n % 10 == 0:
            print(f"{n} random cases", file=sys.stderr)
    return cases


# --------------------------------------------------------------------------
# Perceptron
# --------------------------------------------------------------------------

GATES = {
    "and": lambda bits: all(bits),
    "or": lambda bits: any(bits),
    "nand": lambda bits: not all(bits),
    "nor": lambda bits: not any(bits),
    "xor": lambda bits: sum(bits) % 2 == 1,
    "xnor": lambda bits: sum(bits) % 2 == 0,
}


def truth_table(gate, n, in_enc, out_enc):
    low_in = 0.0 if in_enc == "binary" else -1.0
    low_out = 0.0 if out_enc == "binary" else -1.0
    rows = []
    for r in range(2 ** n):
        bits = [(r >> (n - 1 - k)) & 1 == 1 for k in range(n)]
        rows.append({"x": [1.0 if b else low_in for b in bits],
                     "target": 1.0 if GATES[gate](bits) else low_out})
    return rows


def train(samples, eta, convention, out_enc, w0, b0, learn_threshold, max_epochs):
    """The textbook perceptron, one sample at a time."""
    low = 0.0 if out_enc == "binary" else -1.0
    w = list(w0)
    b = b0  # bias, or threshold theta
    trace = []
    converged = False
    epochs = 0
    for epoch in range(1, max_epochs + 1):
        epochs = epoch
        updates = 0
        for i, s in enumerate(samples):
            dot = 0.0
            for wi, xi in zip(w, s["x"]):
                dot += wi * xi
            if convention == "threshold":
                net = dot
                y = 1.0 if dot >= b else low
            else:
                net = dot + b
                y = 1.0 if net >= 0 else low
            err = s["target"] - y
            if err != 0:
                updates += 1
                w = [wi + eta * err * xi for wi, xi in zip(w, s["x"])]
                if convention == "bias":
                    b = b + eta * err
                elif learn_threshold:
                    b = b - eta * err
            trace.append({"epoch": epoch, "sample": i, "net": net, "output": y, "error": err,
                          "weights": list(w), "bias": b})
        if updates == 0:
            converged = True
            break
    return trace, converged, epochs, w, b


def separable(samples):
    """LP feasibility: exists (w, b) with s_i (w.x_i + b) >= 1."""
    d = len(samples[0]["x"])
    a_ub, b_ub = [], []
    for s in samples:
        sign = 1.0 if s["target"] == 1.0 else -1.0
        a_ub.append([-sign * v for v in s["x"]] + [-sign])
        b_ub.append(-1.0)
    res = linprog(c=np.zeros(d + 1), A_ub=np.array(a_ub), b_ub=np.array(b_ub),
                  bounds=[(None, None)] * (d + 1), method="highs")
    return bool(res.status == 0)


def perceptron_cases():
    cases = []
    specs = [
        # the exam: XNOR, learning rate 0.02, threshold 0.2
        dict(name="exam_xnor_threshold", gate="xnor", inputs=2, learning_rate=0.02,
             convention="threshold", threshold=0.2, max_epochs=30),
        dict(name="xnor_learned_threshold", gate="xnor", inputs=2, learning_rate=0.02,
             convention="threshold", threshold=0.2, learn_threshold=True, max_epochs=30),
        dict(name="and_threshold_learned", gate="and", inputs=2, learning_rate=0.02,
             convention="threshold", threshold=0.2, learn_threshold=True, max_epochs=100),
        dict(name="and_fixed_threshold", gate="and", inputs=2, learning_rate=0.1,
             convention="threshold", threshold=0.2, initial_weights=[0.3, -0.1], max_epochs=100),
        dict(name="or_fixed_threshold", gate="or", inputs=2, learning_rate=0.1,
             convention="threshold", threshold=0.5, max_epochs=100),
    ]
    for g in GATES:
        for n in (2, 3):
            specs.append(dict(name=f"{g}{n}_bias", gate=g, inputs=n, learning_rate=1.0, max_epochs=60))
        specs.append(dict(name=f"{g}2_bipolar", gate=g, inputs=2, learning_rate=0.5,
                          output_encoding="bipolar", input_encoding="bipolar", max_epochs=60))
        specs.append(dict(name=f"{g}2_bias_init", gate=g, inputs=2, learning_rate=0.1,
                          initial_weights=[0.5, -0.3], initial_bias=0.2, max_epochs=60))
    specs.append(dict(name="and4_bias", gate="and", inputs=4, learning_rate=0.5, max_epochs=100))
    specs.append(dict(name="xor4_bias", gate="xor", inputs=4, learning_rate=0.5, max_epochs=20))
    specs.append(dict(name="dataset_points", samples=[
        {"x": [2.0, 1.0], "target": 1.0}, {"x": [0.5, 3.0], "target": 0.0},
        {"x": [3.0, 2.5], "target": 1.0}, {"x": [-1.0, 0.5], "target": 0.0},
        {"x": [1.0, 1.0], "target": 1.0}], learning_rate=0.3, max_epochs=200))
    specs.append(dict(name="dataset_conflict", samples=[
        {"x": [1.0, 1.0], "target": 1.0}, {"x": [1.0, 1.0], "target": 0.0},
        {"x": [0.0, 0.0], "target": 0.0}], learning_rate=1.0, max_epochs=15))
    for spec in specs:
        req = {k: v for k, v in spec.items() if k != "name"}
        out_enc = req.get("output_encoding", "binary")
        in_enc = req.get("input_encoding", "binary")
        if "gate" in req:
            samples = truth_table(req["gate"], req["inputs"], in_enc, out_enc)
        else:
            samples = req["samples"]
        d = len(samples[0]["x"])
        conv = req.get("convention", "bias")
        b0 = req.get("threshold", 0.0) if conv == "threshold" else req.get("initial_bias", 0.0)
        trace, conv_ok, epochs, w, b = train(samples, req["learning_rate"], conv, out_enc,
                                              req.get("initial_weights", [0.0] * d), b0,
                                              req.get("learn_threshold", False), req["max_epochs"])
        cases.append({
            "name": spec["name"],
            "request": req,
            "expected": {
                "samples": samples,
                "trace": trace,
                "converged": conv_ok,
                "epochs_run": epochs,
                "weights": w,
                "bias": b,
                "linearly_separable": separable(samples),
            },
        })
    return cases


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    calc = calculus_cases()
    with open(os.path.join(FIXTURES, "calculus_cases.json"), "w") as fh:
        json.dump(calc, fh, indent=1)
    perc = perceptron_cases()
    with open(os.path.join(FIXTURES, "perceptron_cases.json"), "w") as fh:
        json.dump(perc, fh, indent=1)
    print(f"{len(calc)} calculus cases, {len(perc)} perceptron cases", file=sys.stderr)


if __name__ == "__main__":
    main()
