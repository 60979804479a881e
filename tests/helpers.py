"""Small helpers the tests share."""
import torch


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute element-wise difference, in float32: how far apart two results are."""
    return (a.detach().float() - b.detach().float()).abs().max().item()
