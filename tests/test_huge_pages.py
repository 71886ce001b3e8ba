"""The workspace's large buffers in memory advised for huge pages (lstm_models/core/scratch_fast/huge_pages.py).

What is checked is what the process controls: that the advice is given (the mapping's ``hg`` flag in
``/proc/self/smaps``), that a buffer starts on a 2 MiB boundary, lives as long as a tensor over it and no longer,
and that turning it off gives ordinary memory. Whether the kernel then finds free 2 MiB pages is its own affair.
"""

import gc
import mmap
import os
import re
import sys

import pytest
import torch

from lstm_models import build_lstm
from lstm_models.core.scratch_fast import huge_pages, workspace
from tests.helpers import printed_by_fresh_process

MIB = 1 << 20

needs_linux = pytest.mark.skipif(
    not huge_pages.platform_allows() or huge_pages.kernel_mode() == "unavailable",
    reason="huge pages are asked for on Linux only (mmap.MADV_HUGEPAGE), with a kernel that has them",
)


@pytest.fixture(autouse=True)
def fresh_pool():
    workspace.clear()
    huge_pages.set_enabled(True)
    yield
    workspace.clear()
    huge_pages.set_enabled(True)


def _mapping_of(address: int) -> dict | None:
    """The /proc/self/smaps entry holding ``address``: its range, and its VmFlags as a set; None when unmapped."""
    with open("/proc/self/smaps") as smaps:
        entry = None
        for line in smaps:
            span = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
            if span:
                start, end = int(span.group(1), 16), int(span.group(2), 16)
                entry = {"start": start, "end": end} if start <= address < end else None
            elif entry is not None and line.startswith("VmFlags:"):
                entry["flags"] = set(line.split()[1:])
                return entry
    return None


def _advised(tensor: torch.Tensor) -> bool:
    """Whether the mapping holding ``tensor``'s memory was given MADV_HUGEPAGE (its ``hg`` flag)."""
    mapping = _mapping_of(tensor.data_ptr())
    return mapping is not None and "hg" in mapping["flags"]


@needs_linux
def test_a_buffer_starts_on_a_huge_page_and_is_advised_for_them():
    buffer = huge_pages.empty(3 * MIB // 4 + 5, torch.float32)  # a size that is not a whole number of pages
    assert buffer.shape == (3 * MIB // 4 + 5,) and buffer.dtype == torch.float32 and buffer._base is None
    assert buffer.data_ptr() % huge_pages.HUGE_PAGE_BYTES == 0
    assert _advised(buffer)
    assert _mapping_of(buffer.data_ptr())["end"] >= buffer.data_ptr() + buffer.numel() * 4


@needs_linux
def test_the_mapping_lives_as_long_as_a_tensor_over_it():
    buffer = huge_pages.empty(MIB, torch.float64)
    view = buffer[10:20]
    address = buffer.data_ptr()
    del buffer
    gc.collect()
    view.fill_(2.5)  # still mapped: the view holds the storage, which holds the mapping
    assert view.sum().item() == 25.0
    assert _mapping_of(address) is not None
    del view
    gc.collect()
    assert _mapping_of(address) is None  # unmapped with the last tensor over it


def test_turned_off_there_is_no_advice_and_the_pool_uses_the_allocator():
    huge_pages.set_enabled(False)
    assert huge_pages.empty(MIB, torch.float32) is None
    taken = workspace.take((2, MIB), torch.empty(0))  # 8 MiB: large enough for huge pages when they are on
    assert taken.shape == (2, MIB)
    if sys.platform.startswith("linux"):
        assert not _advised(taken)


@pytest.mark.slow  # starts fresh interpreters
@needs_linux
def test_environment_variable_turns_it_off():
    for value, expected in (("0", "False"), ("1", "True")):
        assert printed_by_fresh_process("huge_pages", "available", LSTM_BENCH_HUGE_PAGES=value) == expected


@needs_linux
def test_advice_the_kernel_refuses_gives_ordinary_memory(monkeypatch):
    monkeypatch.setattr(mmap, "MADV_HUGEPAGE", 12345)  # no such advice: the kernel answers EINVAL, as one without THP
    assert huge_pages.empty(MIB, torch.float32) is None
    taken = workspace.take((2, MIB), torch.empty(0))
    taken.fill_(1.0)
    assert taken.sum().item() == 2 * MIB


@needs_linux
def test_the_pools_large_buffers_are_advised_and_its_small_ones_are_not():
    like = torch.empty(0)
    large = workspace.take((4, 100 * 64, 256), like)  # the input projection at `medium`: 26 MB
    assert _advised(large)
    small = workspace.take((MIB // 4 + 1,), like)  # pooled (over 1 MiB) but under one huge page
    assert not _advised(small)
    workspace.give_back(large)
    assert workspace.take((4, 100 * 64, 256), like).data_ptr() == large.data_ptr()  # kept and reused as before


@needs_linux
def test_training_on_huge_page_buffers_matches_nn_lstm():
    """At a size where every pooled buffer is in huge pages, gradients equal nn.LSTM's in float64, over two steps
    so that the second reuses the first's buffers."""
    torch.manual_seed(0)
    native = build_lstm("native", 64, 96, dtype=torch.float64)
    fast = build_lstm("scratch_fast", 64, 96, dtype=torch.float64)
    fast.load_state_dict(native.state_dict())
    for step in range(2):
        x = torch.randn(60, 32, 64, dtype=torch.float64)  # the input projection: 60 * 32 * 4 * 96 doubles, 5.6 MB
        for model in (native, fast):
            model.zero_grad()
            output, _ = model(x)
            output.pow(2).sum().backward()
        for (name, expected), actual in zip(native.named_parameters(), fast.parameters()):
            torch.testing.assert_close(actual.grad, expected.grad, rtol=1e-10, atol=1e-10, msg=f"step {step}, {name}")
    reused = workspace.take((4, 60 * 32, 96), torch.empty(0, dtype=torch.float64))  # a buffer the steps gave back
    assert _advised(reused)


def test_settings_say_who_gets_huge_pages(monkeypatch):
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "1")
    huge_pages.set_enabled(False)
    settings = huge_pages.settings()
    assert settings["workspace"] == "off" and settings["torch_allocator"] == "on"
    if os.path.exists(huge_pages.KERNEL_MODE_FILE):
        with open(huge_pages.KERNEL_MODE_FILE) as setting:
            assert f"[{settings['kernel']}]" in setting.read()
    else:
        assert settings["kernel"] == "unavailable"
    huge_pages.set_enabled(True)
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE")
    assert huge_pages.settings()["torch_allocator"] == "off"
    assert huge_pages.settings()["workspace"] == ("on" if huge_pages.available() else "off")


def test_runs_are_tagged_with_who_gets_huge_pages():
    from mlflow_project.environment import environment_tags

    tags = environment_tags("cpu")
    assert {key: tags[key] for key in tags if key.startswith("lstm_bench.huge_pages.")} == {
        f"lstm_bench.huge_pages.{who}": value for who, value in huge_pages.settings().items()}

