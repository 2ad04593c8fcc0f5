"""Loading Hugging Face models quietly and offline: the pieces MiniLM and CLIP share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..errors import InvalidParameterError


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' per-load progress bar (a server or test log does not need it) and restore it after."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def torch_device(device: str):
    """A torch.device from a name, or InvalidParameterError naming the bad value."""
    import torch

    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(f"device must be a torch device name such as 'cpu', got {device!r}: {exc}") from None


def as_tensor_output(output):
    """The embedding tensor of a ``get_*_features`` call: transformers 4 returns a tensor, 5 an output object."""
    return output if hasattr(output, "shape") else output.pooler_output
