"""`--precision auto`: what bertkit.cpu reads off the CPU and what it picks, for inference and
for training."""

import pytest

from bertkit import cpu
from bertkit.tasks.inference import pick_runtime

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile

processor\t: 1
model name\t: another name the parser must not take
"""
ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma\n"


@pytest.fixture
def fake_cpu(tmp_path, monkeypatch):
    """Points bertkit.cpu at a written /proc/cpuinfo; returns a function that writes one."""
    monkeypatch.delenv(cpu.PRECISION_ENV, raising=False)

    def use(text):
        path = tmp_path / f"cpuinfo{len(text)}"
        path.write_text(text)
        monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(cpu.cpu_info(str(path)).get("flags", "").split()))
        return cpu.cpu_info(str(path))

    return use


def test_cpuinfo_is_read_from_the_first_processor(fake_cpu):
    info = fake_cpu(XEON)
    assert info["model name"] == "Intel(R) Xeon(R) Processor"
    assert {"avx512_vnni", "amx_int8"} <= set(info["flags"].split())
    assert cpu.cpu_info("/nonexistent/cpuinfo") == {}


@pytest.mark.parametrize("text, want", [(XEON, "int8"), (ZEN3, "fp32"),
                                        ("flags\t: avx2 avx_vnni\n", "int8"), ("", "fp32")])
def test_auto_picks_int8_only_where_the_cpu_has_int8_dot_products(fake_cpu, text, want):
    fake_cpu(text)
    assert cpu.auto_precision() == want
    assert pick_runtime("tflite", "auto") == ("tflite", want)
    assert pick_runtime("tensorflow", "auto") == ("tensorflow", "fp32")  # TensorFlow runs fp32 only


def test_environment_fixes_what_auto_means(fake_cpu, monkeypatch):
    fake_cpu(XEON)
    monkeypatch.setenv(cpu.PRECISION_ENV, "fp32")
    assert pick_runtime("auto", "auto") == ("tflite", "fp32")
    fake_cpu(ZEN3)
    monkeypatch.setenv(cpu.PRECISION_ENV, "int8")
    assert pick_runtime("auto", "auto") == ("tflite", "int8")
    monkeypatch.setenv(cpu.PRECISION_ENV, "bf16")  # a training precision: inference decides alone
    assert pick_runtime("auto", "auto") == ("tflite", "fp32")
    monkeypatch.setenv(cpu.PRECISION_ENV, "fp64")
    with pytest.raises(ValueError, match=r"\$BERTKIT_PRECISION must be one of fp32, int8, bf16, got 'fp64'"):
        pick_runtime("auto", "auto")
    with pytest.raises(ValueError, match=r"\$BERTKIT_PRECISION must be one of"):
        cpu.auto_training_precision()


@pytest.mark.parametrize("text, want", [(XEON, "bf16"), (ZEN3, "fp32"), ("", "fp32"),
                                        ("flags\t: avx2 avx512f avx512_bf16 avx512_vnni\n", "fp32")])
def test_training_auto_picks_bf16_only_where_the_cpu_has_amx_bf16(fake_cpu, monkeypatch, text, want):
    fake_cpu(text)
    assert cpu.auto_training_precision() == want
    monkeypatch.setenv(cpu.PRECISION_ENV, "fp32")
    assert cpu.auto_training_precision() == "fp32"
    monkeypatch.setenv(cpu.PRECISION_ENV, "int8")  # an inference precision: training decides alone
    assert cpu.auto_training_precision() == want
    monkeypatch.setenv(cpu.PRECISION_ENV, "bf16")
    assert cpu.auto_training_precision() == "bf16"


def test_training_runs_resolve_auto_and_xla_for_the_machine(fake_cpu, monkeypatch):
    from bertkit.tasks.options import PretrainOptions
    from bertkit.tasks.pretrain import _resolve_speed_options
    from bertkit.training.optimizer import resolve_training_precision

    fake_cpu(XEON)
    assert resolve_training_precision("auto") == "bf16"
    assert resolve_training_precision("fp16") == "fp16"
    with pytest.raises(ValueError, match="precision must be auto or one of"):
        resolve_training_precision("int8")
    # bf16 pretraining runs in graph mode (oneDNN's AMX matmuls), fp32 under XLA; explicit choices stay.
    resolved = _resolve_speed_options(PretrainOptions())
    assert (resolved.precision, resolved.xla) == ("bf16", False)
    resolved = _resolve_speed_options(PretrainOptions(xla=True))
    assert (resolved.precision, resolved.xla) == ("bf16", True)
    fake_cpu(ZEN3)
    resolved = _resolve_speed_options(PretrainOptions())
    assert (resolved.precision, resolved.xla) == ("fp32", True)
    resolved = _resolve_speed_options(PretrainOptions(precision="bf16"))
    assert (resolved.precision, resolved.xla) == ("bf16", False)


def test_explicit_precisions_ignore_the_cpu(fake_cpu, monkeypatch):
    fake_cpu(XEON)
    monkeypatch.setenv(cpu.PRECISION_ENV, "int8")
    assert pick_runtime("auto", "fp32") == ("tflite", "fp32")
    assert pick_runtime("auto", "int8") == ("tflite", "int8")
    with pytest.raises(ValueError, match="--precision int8 runs on the TFLite runtime"):
        pick_runtime("tensorflow", "int8")
    with pytest.raises(ValueError, match="--precision must be one of fp32, int8"):
        pick_runtime("auto", "bf16")
