"""synthaug._tensorflow: TensorFlow's start-up log lines filtered from stderr, nothing else."""
import subprocess
import sys

from synthaug._tensorflow import filter_startup_lines

STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795813277.567674   18977 port.cc:153] oneDNN custom operations are on.\n"
    "I0000 00:00:1795813277.567993   18977 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.\n"
    "I0000 00:00:1795813277.6   18977 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...\n"
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.\n"
    "E0000 00:00:1795813280.499305   18977 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
)


def test_start_up_lines_go_and_everything_else_stays():
    other = "W0000 00:00:1.0   1 loader.cc:10] a real warning\nTraceback (most recent call last):\n"
    assert filter_startup_lines(STARTUP + other) == other
    # with a CUDA driver present, a failing cuInit is news and is kept
    with_driver = "E0000 00:00:1.0   1 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_NO_DEVICE\n"
    assert filter_startup_lines(with_driver) == with_driver


def test_importing_tensorflow_through_it_prints_nothing_but_python_stderr_still_works():
    code = ("import sys; from synthaug._tensorflow import import_tensorflow; tf = import_tensorflow(); "
            "print('after', file=sys.stderr); print(tf.constant(2).numpy())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout == "2\n"
    assert run.stderr == "after\n", run.stderr
