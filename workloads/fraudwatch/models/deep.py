"""What the two PyTorch models share: importing torch with a clear error, seeding, training."""

from __future__ import annotations

import os

from fraudwatch.errors import UserError


def torch_module():
    try:
        import torch
    except ImportError:
        raise UserError(
            "the autoencoder and lstm models need PyTorch; install it with "
            "pip install 'fraudwatch[deep]', or choose --models iforest"
        ) from None
    # Small networks: one thread per process is faster than two fighting over two cores.
    torch.set_num_threads(int(os.environ.get("FRAUDWATCH_TORCH_THREADS", 1)))
    return torch
