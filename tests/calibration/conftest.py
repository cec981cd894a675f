import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests run thousands of tiny ops, for which a second thread only adds
    synchronisation (up to 100x slower on a busy 2-core machine); restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
