"""--device checking: a device this PyTorch cannot use is refused up front with a clear line."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import assert_clear_error

from rbsf.devices import check_device, exact_float32, exact_float32_on_gpu
from rbsf.models.siamfc import SiamFCNet
from trackers.siamfc import SiamFCTracker

REPO = Path(__file__).resolve().parents[1]


def test_cpu_is_accepted():
    assert check_device("cpu") == "cpu"


@pytest.mark.parametrize("name, phrase", [("tpu", "unknown device"), ("cuda:x", "unknown device"),
                                          ("meta", "not supported")])
def test_bad_names_are_refused(name, phrase):
    with pytest.raises(ValueError, match=phrase):
        check_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_says_use_cpu():
    with pytest.raises(ValueError, match="--device cpu"):
        check_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("tool", ["eval.py", "train_rbsf.py", "reproduce.py"])
def test_tools_refuse_cuda_without_gpu(tool, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "tools" / tool), "--device", "cuda",
                           "--out", str(tmp_path / "out")] if tool != "eval.py" else
                          [sys.executable, str(REPO / "tools" / tool), "--device", "cuda"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert_clear_error(proc, "no usable GPU", "--device cpu")
    assert not (tmp_path / "out").exists()


def test_tracker_runs_on_the_device_it_is_given():
    torch.manual_seed(0)
    tracker = SiamFCTracker(SiamFCNet("rbconv", width=0.25), device="cpu")
    image = (torch.rand(96, 128, 3) * 255).to(torch.uint8).numpy()
    tracker.init(image, (40, 30, 20, 16))
    assert tracker.kernel.device.type == "cpu"
    assert tracker.update(image).shape == (4,)


@pytest.fixture
def tf32_flags():
    """Set the two TF32 flags for a test and put the previous values back afterwards.

    The flags are not plain attributes: ``torch.backends.cuda.matmul.allow_tf32`` is served by
    the module's ``__getattr__`` / ``__setattr__`` from a global of the C library, so pytest's
    ``monkeypatch`` cannot undo it (it deletes the attribute it believes it created)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32

    def set_flags(cudnn: bool, matmul: bool) -> None:
        torch.backends.cudnn.allow_tf32 = cudnn
        torch.backends.cuda.matmul.allow_tf32 = matmul
    yield set_flags
    set_flags(*saved)


def test_gpu_tracking_turns_tf32_off(tf32_flags):
    tf32_flags(True, True)
    exact_float32_on_gpu()
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_exact_float32_block_restores_tf32(tf32_flags):
    tf32_flags(True, False)
    with exact_float32():
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_pool_workers_run_opencv_without_its_thread_pool():
    """OpenCV's thread pool does not survive a fork (a worker can hang in it): the data writers'
    and the tracking pool's workers keep off it."""
    import multiprocessing

    import cv2
    import numpy as np

    from rbsf.data import render, synthetic
    from rbsf.eval.runner import process_pool

    cv2.resize(np.zeros((600, 600, 3), np.uint8), (900, 900))      # the parent uses its pool
    fork = multiprocessing.get_context("fork")
    with fork.Pool(1, initializer=synthetic._init_worker, initargs=([],)) as pool:
        assert pool.apply(cv2.getNumThreads) == 1
    with fork.Pool(1, initializer=render._init_worker, initargs=(None,)) as pool:
        assert pool.apply(cv2.getNumThreads) == 1
    with process_pool(2) as pool:
        assert pool.submit(cv2.getNumThreads).result() == 1
    assert cv2.getNumThreads() > 1 or multiprocessing.cpu_count() == 1
