import pytest
import torch


@pytest.fixture
def keep_threads():
    """Restore torch's thread count: loading a model or training sets it for the process."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
