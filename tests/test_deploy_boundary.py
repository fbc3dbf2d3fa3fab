"""The C boundary of the packed engine checks itself: one rule for output sizes, shapes, dtypes,
contiguity and geometry refused before a kernel runs (on both sides), tiny inputs, the
instruction-set cap, and a child forked while a job runs."""
import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from rbsf.deploy import native
from rbsf.deploy.engine import (BinaryLayer, binary_conv, correlate, int8_conv, real_conv)
from rbsf.deploy.native import EngineError
from rbsf.models.siamfc import xcorr

pytestmark = pytest.mark.skipif(not native.supported_isas(), reason="native engine not compiled")


def _layer(cin, cout, k, stride=1, pad=0, groups=1):
    negative = torch.rand(cout, cin // groups, k, k, generator=torch.Generator().manual_seed(0))
    return BinaryLayer("t", cin, cout, k, stride, pad, groups, negative < 0.5, torch.ones(cout),
                       torch.zeros(cout))


def test_out_size_is_the_floor_rule_and_refuses_windows_that_do_not_fit():
    for n in range(1, 20):
        for k in range(1, 8):
            for stride in (1, 2, 3):
                for pad in (0, 1, 2):
                    if n + 2 * pad >= k:
                        assert native.out_size(n, k, stride, pad) == (n + 2 * pad - k) // stride + 1
                    else:
                        with pytest.raises(EngineError, match="too small"):
                            native.out_size(n, k, stride, pad)


@pytest.mark.parametrize("isa", native.supported_isas())
def test_tiny_inputs_are_refused_before_any_kernel_runs(isa):
    # C used to truncate (2 - 3) / 2 + 1 = 1 where Python floored to 0 rows: one row past the end
    with pytest.raises(EngineError, match="too small"):
        native.pack_nhwc(torch.randn(1, 2, 5, 8), 1, 0, 1, pool=True, isa=isa)
    with pytest.raises(EngineError, match="too small"):
        binary_conv(torch.randn(1, 2, 2, 8), _layer(8, 8, 3), backend="native", isa=isa)
    with pytest.raises(EngineError, match="too small"):
        binary_conv(torch.randn(1, 5, 5, 8), _layer(8, 8, 3), [("pool",)], backend="native",
                    isa=isa)
    weight, bias = torch.randn(4, 3, 5, 5), torch.randn(4)
    if isa != "scalar":
        with pytest.raises(EngineError, match="too small"):
            real_conv(torch.rand(1, 3, 4, 9) * 255, weight, bias, 2, {}, "native", isa)
    if native.int8_supported(isa):
        with pytest.raises(EngineError, match="too small"):
            int8_conv(torch.rand(1, 3, 9, 4) * 255, weight, bias, 2, {}, "native", 1, isa)
    with pytest.raises(EngineError, match="too small"):
        correlate(torch.randn(1, 8, 6, 6), torch.randn(2, 8, 5, 9), 1.0, "native", isa)


def test_smallest_inputs_that_fit_give_the_exact_result():
    layer = _layer(8, 8, 3)
    x = torch.randn(1, 3, 3, 8)
    assert binary_conv(x, layer, backend="native").shape == (1, 1, 1, 8)
    torch.testing.assert_close(binary_conv(x, layer, backend="native"),
                               binary_conv(x, layer, backend="torch"))
    assert binary_conv(torch.randn(1, 3, 3, 8), _layer(8, 8, 1), [("pool",)],
                       backend="native").shape == (1, 1, 1, 8)


def test_bad_dtype_layout_and_geometry_are_refused():
    x = torch.randn(1, 6, 6, 8)
    with pytest.raises(EngineError, match="float32"):
        native.pack_nhwc(x.double(), 1, 0, 1)
    with pytest.raises(EngineError, match="contiguous"):
        native.pack_nhwc(x.transpose(1, 2), 1, 0, 1)
    with pytest.raises(EngineError, match="groups"):
        native.pack_nhwc(x, 3, 0, 1)
    with pytest.raises(EngineError, match="scale and shift"):
        native.pack_nhwc(x, 1, 0, 1, scale=torch.ones(8))
    with pytest.raises(EngineError, match="8 values"):
        native.pack_nhwc(x, 1, 0, 1, scale=torch.ones(7), shift=torch.ones(7))
    act = native.pack_nhwc(x, 1, 0, 1)
    layer = _layer(8, 8, 3)
    args = (layer.packed_weight(), 8, 3, 1, layer.kreal, layer.scale, layer.shift, None, 1)
    with pytest.raises(EngineError, match="stride"):
        native.bconv(act, *args[:3], 0, *args[4:])
    with pytest.raises(EngineError, match="values"):
        native.bconv(act, layer.packed_weight()[:-1], *args[1:])
    with pytest.raises(EngineError, match="int64"):
        native.bconv(act.int(), *args)
    with pytest.raises(EngineError, match="instruction set"):
        native.pack_nhwc(x, 1, 0, 1, isa="sse2")


def test_c_refuses_what_the_caller_got_wrong():
    """Called past the Python checks, the C side recomputes sizes and checks geometry itself."""
    lib = native.library()
    x = torch.randn(1, 6, 6, 8)
    out = torch.zeros(1, 6, 6, 1, 1, dtype=torch.int64)
    pack = lambda h, w, groups=1: lib.rbsf_pack_nhwc(x.data_ptr(), 1, 6, 6, 8, groups, 0, 0,
                                                     None, None, out.data_ptr(), h, w, 0, 1)
    assert pack(6, 6) == 0
    assert pack(7, 6) == pack(6, 5) == pack(6, 6, groups=3) == -3
    act = native.pack_nhwc(x, 1, 0, 1)
    layer = _layer(8, 8, 3)
    res = torch.zeros(1, 4, 4, 8)
    conv = lambda h, kreal=layer.kreal, stride=1: lib.rbsf_bconv(
        act.data_ptr(), 1, 6, 6, 1, 1, layer.packed_weight().data_ptr(), 8, 3, stride, kreal,
        layer.scale.data_ptr(), layer.shift.data_ptr(), res.data_ptr(), h, 4, 0, 1)
    assert conv(4) == 0
    assert conv(5) == conv(4, kreal=65 * 9) == conv(4, stride=0) == conv(4, kreal=10) == -3
    assert lib.rbsf_pack_nhwc(x.data_ptr(), 1, 6, 6, 8, 1, 0, 0, None, None, out.data_ptr(),
                              6, 6, 99, 1) == -1


def test_native_head_equals_the_grouped_convolution():
    gen = torch.Generator().manual_seed(5)
    z, x = torch.randn(1, 40, 6, 5, generator=gen), torch.randn(3, 40, 22, 19, generator=gen)
    expected = xcorr(z, x) * 1e-3
    for isa in native.supported_isas():
        for threads in (1, 3):
            got = correlate(z, x, 1e-3, "native", isa, threads)
            assert got.shape == expected.shape
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(correlate(z, channels_last, 1e-3), expected, rtol=1e-5, atol=1e-6)


def _isas_under(cap):
    code = "from rbsf.deploy import native; print(','.join(native.supported_isas()))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, RBSF_MAX_ISA=cap))


def test_rbsf_max_isa_caps_every_level_above_it():
    done = _isas_under("avx2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["scalar,avx2"]
    done = _isas_under("SCALAR")
    assert done.stdout.split() == ["scalar"]
    done = _isas_under("avx9000")
    assert done.returncode != 0 and "RBSF_MAX_ISA='avx9000'" in done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_child_forked_during_a_job_runs_its_own_jobs():
    """fork() while another thread runs a multithreaded job: the child must neither deadlock
    on the pool's locks nor wait for the parent's workers (it used to spin for ever)."""
    big = torch.randn(8, 160, 160, 256)
    small = torch.randn(1, 20, 20, 64)
    stop = threading.Event()

    def work():
        while not stop.is_set():
            native.pack_nhwc(big, 1, 0, 2)

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.2)
    hung = 0
    try:
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    native.pack_nhwc(small, 1, 0, 2)
                    code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0
                    break
                time.sleep(0.02)
            else:
                hung += 1
                os.kill(pid, 9)
                os.waitpid(pid, 0)
    finally:
        stop.set()
        thread.join()
    assert hung == 0
