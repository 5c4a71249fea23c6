#!/usr/bin/env python3
"""Times in PyTorch (CPU, eager, float64, one thread) the problems that
benches/numeric.rs times in dlgrade, for BENCHMARKS.md.

Install: pip install torch
Run:     python tests/reference/time_torch.py
Prints one line per problem: median and min wall time over the repetitions,
plus process CPU time per repetition (robust on a shared machine).
"""

import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


def bench(name, fn, reps):
    fn()  # warm-up
    walls = []
    c0 = time.process_time()
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    cpu = (time.process_time() - c0) / reps
    print(f"{name}: median {statistics.median(walls) * 1e3:.3f} ms, min {min(walls) * 1e3:.3f} ms, "
          f"cpu {cpu * 1e3:.3f} ms/rep ({reps} reps)")


def conv224():
    w = torch.tensor([((i * 37 % 101) / 101.0) - 0.5 for i in range(64 * 27)]).reshape(64, 3, 3, 3)
    b = torch.full((64,), 0.1)
    x = torch.tensor([((i * 13 % 97) / 97.0) for i in range(3 * 224 * 224)]).reshape(1, 3, 224, 224)

    def fwd():
        with torch.no_grad():
            return F.conv2d(x, w, b, padding=1)

    wg = w.clone().requires_grad_(True)
    bg = b.clone().requires_grad_(True)
    xg = x.clone().requires_grad_(True)

    def fwd_bwd():
        y = F.conv2d(xg, wg, bg, padding=1)
        y.backward(torch.ones_like(y))
        wg.grad = None
        bg.grad = None
        xg.grad = None

    bench("conv2d_1x3x224x224_64x3x3/forward", fwd, 20)
    bench("conv2d_1x3x224x224_64x3x3/forward_backward", fwd_bwd, 20)


def exam_tum_p5():
    x = torch.tensor([[[[1, -0.5], [2, -2]], [[-2, 1], [-1.5, 1]], [[1, 0], [0, 0]]]])
    y = torch.tensor([[[[0.0, 1], [1, 0]]]])

    def run():
        w = torch.ones(1, 3, 1, 1, requires_grad=True)
        out = F.max_pool2d(F.pad(F.conv2d(x, w), (1, 1, 1, 1), value=0.0), 2, 2)
        loss = F.binary_cross_entropy(out, y, reduction="sum")
        loss.backward()
        return loss.item(), w.grad

    bench("exam_tum_p5_gradients", run, 2000)


def exam_bits_2c():
    x = torch.tensor([[0.75]])
    t = torch.tensor([[1.25]])

    def run():
        w1 = torch.tensor([[0.5], [-0.6]], requires_grad=True)
        b1 = torch.tensor([0.1, -0.2], requires_grad=True)
        w2 = torch.tensor([[0.7, -0.8]], requires_grad=True)
        b2 = torch.tensor([0.3], requires_grad=True)
        h = torch.sigmoid(x @ w1.T + b1)
        o = torch.sigmoid(h @ w2.T + b2)
        loss = F.mse_loss(o, t)
        loss.backward()
        return loss.item()

    bench("exam_bits_2c_mlp_gradients", run, 2000)


def lenet():
    x = torch.full((1, 1, 32, 32), 0.5)
    c1 = torch.full((6, 1, 5, 5), 0.01)
    c2 = torch.full((16, 6, 5, 5), 0.01)
    d1 = torch.full((120, 400), 0.01)
    d2 = torch.full((84, 120), 0.01)
    d3 = torch.full((10, 84), 0.01)

    def run():
        with torch.no_grad():
            h = F.max_pool2d(F.relu(F.conv2d(x, c1, torch.zeros(6))), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, c2, torch.zeros(16))), 2)
            h = h.flatten(1)
            h = F.relu(h @ d1.T)
            h = F.relu(h @ d2.T)
            return F.softmax(h @ d3.T, dim=-1)

    bench("lenet5_forward", run, 500)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float64")
    conv224()
    exam_tum_p5()
    exam_bits_2c()
    lenet()
