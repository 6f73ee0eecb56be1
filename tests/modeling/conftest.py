"""Shared fixtures of the model tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models train faster on one thread, and far faster (about 10x) when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
