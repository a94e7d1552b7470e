"""Shared fixtures for the model tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small inputs gain nothing from threads, and on a busy machine threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
