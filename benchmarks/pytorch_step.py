"""The official PyTorch BC-ResNet's training step and inference, for side-by-side ratios.

Runs under a Python that has `torch` (not the project's environment), on the
official code (Qualcomm-AI-research/bcresnet, `bcresnet.py` and
`subspectralnorm.py`), with the same shapes as `benchmarks/train_step.py`:
batch 100 of `[1, 40, 101]` log-mel inputs, 12 classes, Adam at 1e-3, cross
entropy, 2 threads. Prints one JSON line:

    {"train_samples_per_s": ..., "inference_samples_per_s": ..., "torch": "..."}

    git clone https://github.com/Qualcomm-AI-research/bcresnet /path/to/bcresnet
    /path/to/torch-python benchmarks/pytorch_step.py --bcresnet_dir=/path/to/bcresnet

`benchmarks/train_step.py --pytorch_python=... --bcresnet_dir=...` calls this
script before and after its own measurements and prints the ratios.
"""

import argparse
import json
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bcresnet_dir", required=True, help="Checkout of the official code.")
    parser.add_argument("--tau", type=float, default=8, help="BC-ResNet width.")
    parser.add_argument("--frames", type=int, default=101, help="Log-mel frames per example.")
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per measurement.")
    parser.add_argument("--repeats", type=int, default=5, help="Measurements; the best counts.")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    sys.path.insert(0, args.bcresnet_dir)
    try:
        from bcresnet import BCResNets
    except ImportError as error:
        parser.error(
            f"--bcresnet_dir={args.bcresnet_dir} has no importable bcresnet.py ({error}); "
            "pass a checkout of github.com/Qualcomm-AI-research/bcresnet"
        )

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = BCResNets(int(args.tau * 8), num_classes=12)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch_size, 1, 40, args.frames)
    y = torch.randint(0, 12, (args.batch_size,))

    def train_step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    def best_rate(step):
        for _ in range(3):  # warm up
            step()
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            best = min(best, time.perf_counter() - start)
        return args.steps * args.batch_size / best

    model.train()
    train = best_rate(train_step)
    model.eval()
    with torch.no_grad():
        inference = best_rate(lambda: model(x).sum().item())
    print(
        json.dumps(
            {
                "train_samples_per_s": train,
                "inference_samples_per_s": inference,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
