import time


def work(budget_s):
    """Spin for a quarter of the budget in this process."""
    start = time.process_time()
    while time.process_time() - start < budget_s / 4:
        sum(range(1000))


def device_seen():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
