"""A stand-in for a training run: a deterministic metric from the parameters and the seed."""

import hashlib
import sys

lr, model, seed = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
size = {"small": 1.0, "large": 2.5}[model]
noise = int(hashlib.sha256(f"{seed}".encode()).hexdigest()[:8], 16) / 2**32
loss = abs(lr - 0.01) * 10 / size + noise * 0.01
print(f"lr={lr} model={model} seed={seed} loss={loss:.6f}")
