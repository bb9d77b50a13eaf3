"""Hardware detection, with injected readings for the machines we are not on (GB10, H100, unknown SoC)."""

from __future__ import annotations

from spark_labs.hardware.detect import HardwareReaders, detect_hardware


def _readers(**overrides):
    base = {"machine": lambda: "x86_64", "gpu_names": list, "integrated_gpu": lambda: False,
            "cuda_versions": lambda: ("13.0", "580.95"), "mem_total_bytes": lambda: 24 * 2**30,
            "cpu_count": lambda: 2, "in_container": lambda: False}
    base.update(overrides)
    return HardwareReaders(**base)


def test_this_machine_is_detected_as_a_cpu_box():
    info = detect_hardware()
    assert info.kind == "cpu" and not info.gpu_names and not info.unified_memory
    assert info.system_memory_bytes > 0 and info.cpu_count >= 1
    assert any("tiny profile" in line for line in info.advice)


def test_dgx_spark_is_recognised_with_arm64_advice():
    info = detect_hardware(_readers(machine=lambda: "aarch64", gpu_names=lambda: ["NVIDIA GB10"],
                                    mem_total_bytes=lambda: 119 * 2**30))
    assert info.kind == "dgx-spark" and info.is_spark and info.unified_memory and info.arch == "aarch64"
    assert info.spec.bandwidth_gbs == 273
    assert any("--enforce-eager" in line for line in info.advice)
    assert any("bfloat16" in line for line in info.advice)
    assert any("nvidia-smi" in line for line in info.advice)
    assert "dgx-spark · aarch64 · NVIDIA GB10 · unified memory" in info.summary()


def test_discrete_gpu():
    info = detect_hardware(_readers(gpu_names=lambda: ["NVIDIA H100 80GB HBM3"]))
    assert info.kind == "cuda" and not info.unified_memory and info.spec.key == "h100-sxm"
    assert info.driver == "580.95" and info.cuda_runtime == "13.0"
    assert not any("--enforce-eager" in line for line in info.advice)  # x86_64 discrete: no Spark advice


def test_an_integrated_gpu_the_table_does_not_know_is_still_unified():
    info = detect_hardware(_readers(machine=lambda: "aarch64", gpu_names=lambda: ["NVIDIA Thor"],
                                    integrated_gpu=lambda: True))
    assert info.kind == "cuda" and info.unified_memory and info.spec is None
    assert any("unified memory" in line for line in info.advice)


def test_no_gpu_means_no_cuda_versions_are_read():
    def fail():
        raise AssertionError("CUDA versions read without a GPU")

    assert detect_hardware(_readers(cuda_versions=fail)).cuda_runtime is None
