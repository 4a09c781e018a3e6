"""The accelerator catalogue `mi fit` plans against: memory, memory bandwidth and dense peak throughput.

Every figure is the vendor's published one (datasheet or architecture whitepaper, named in `source`), for
dense math: where a datasheet quotes "with sparsity", the dense figure is half of it. Memory is the
datasheet's capacity read as GiB (HBM and GDDR capacities are binary); the driver shows a little less
(ECC and firmware carve-outs), which the runtime reserve of `analysis.fit` absorbs. `None` means the vendor
publishes no such figure or the part has no such math (no bf16 on V100/T4, no fp8 before Ada/Hopper).
Pure data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

GIB = 1024**3
TB = 10**12  # bandwidths and peaks are decimal (TB/s, TFLOPS) in every datasheet


@dataclass(frozen=True, slots=True)
class Accelerator:
    """One accelerator: memory (bytes), bandwidth (bytes/s), dense peaks (ops/s) and where they come from."""

    name: str
    memory_bytes: int
    bandwidth: float
    bf16: float | None
    fp16: float | None
    fp8: float | None
    int8: float | None
    source: str
    usable_fraction: float = 1.0  # share of the memory a GPU program may hold (Apple: unified memory)
    note: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def usable_bytes(self) -> int:
        """Memory an inference engine may allocate before `--utilization` applies."""
        return int(self.memory_bytes * self.usable_fraction)

    def peak(self, precision: str) -> float | None:
        """Dense peak ops/s for a compute precision (`bf16`, `fp16`, `fp8`, `int8`; `int4` runs as int8,
        `fp32` as nothing listed here)."""
        return {"bf16": self.bf16, "fp16": self.fp16, "fp8": self.fp8, "int8": self.int8, "int4": self.int8}.get(
            precision
        )


def _t(tflops: float | None) -> float | None:
    return None if tflops is None else tflops * TB


def _gpu(
    name: str,
    gib: int,
    tb_s: float,
    bf16: float | None,
    fp16: float | None,
    fp8: float | None,
    int8: float | None,
    source: str,
    **kw: object,
) -> Accelerator:
    return Accelerator(name, gib * GIB, tb_s * TB, _t(bf16), _t(fp16), _t(fp8), _t(int8), source, **kw)  # type: ignore[arg-type]


_H100 = (
    "NVIDIA H100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h100/ "
    "(dense = half the sparsity figures)"
)
_A100 = (
    "NVIDIA A100 Tensor Core GPU datasheet, https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/"
    "pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
)
_APPLE = (
    "Apple newsroom/tech specs (memory, bandwidth), https://www.apple.com/mac-studio/specs/ ; Apple publishes no "
    "tensor peak. Usable: Metal's recommendedMaxWorkingSetSize, about 75% of unified memory above 36 GB "
    "(raise with `sysctl iogpu.wired_limit_mb`)"
)

CATALOGUE: tuple[Accelerator, ...] = (
    _gpu("H100-SXM", 80, 3.35, 989.4, 989.4, 1978.9, 1978.9, _H100, aliases=("h100", "h100-80gb")),
    _gpu("H100-PCIe", 80, 2.0, 756.0, 756.0, 1513.0, 1513.0, _H100),
    _gpu(
        "H200",
        141,
        4.8,
        989.4,
        989.4,
        1978.9,
        1978.9,
        "NVIDIA H200 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h200/ (SXM)",
        aliases=("h200-sxm",),
    ),
    _gpu(
        "B200",
        180,
        8.0,
        2250.0,
        2250.0,
        4500.0,
        4500.0,
        "NVIDIA HGX B200 specifications (per GPU: 1,440 GB and 72 PFLOPS sparse FP8 over 8 GPUs), "
        "https://www.nvidia.com/en-us/data-center/hgx/",
    ),
    _gpu("A100-80GB", 80, 2.039, 312.0, 312.0, None, 624.0, _A100 + " (SXM)", aliases=("a100", "a100-80")),
    _gpu("A100-40GB", 40, 1.555, 312.0, 312.0, None, 624.0, _A100, aliases=("a100-40",)),
    _gpu(
        "L40S",
        48,
        0.864,
        362.05,
        362.05,
        733.0,
        733.0,
        "NVIDIA L40S datasheet, https://www.nvidia.com/en-us/data-center/l40s/",
    ),
    _gpu(
        "L4",
        24,
        0.3,
        121.0,
        121.0,
        242.5,
        242.5,
        "NVIDIA L4 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/l4/",
    ),
    _gpu(
        "A10G",
        24,
        0.6,
        125.0,
        125.0,
        None,
        250.0,
        "NVIDIA A10 datasheet, https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a10/pdf/"
        "a10-datasheet.pdf (AWS publishes memory only for its A10G variant; A10 figures used)",
        aliases=("a10",),
    ),
    _gpu(
        "T4",
        16,
        0.32,
        None,
        65.0,
        None,
        130.0,
        "NVIDIA T4 datasheet, https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/"
        "t4-tensor-core-datasheet-951643.pdf",
    ),
    _gpu(
        "V100-32GB",
        32,
        0.9,
        None,
        125.0,
        None,
        None,
        "NVIDIA V100 datasheet, https://images.nvidia.com/content/technologies/volta/pdf/"
        "volta-v100-datasheet-update-us-1165301-r5.pdf (SXM2)",
        aliases=("v100",),
    ),
    _gpu(
        "RTX-3090",
        24,
        0.936,
        71.0,
        71.0,
        None,
        284.0,
        "NVIDIA Ampere GA102 GPU Architecture whitepaper, https://www.nvidia.com/content/PDF/"
        "nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf (FP16/BF16 with FP32 accumulate)",
        aliases=("3090",),
    ),
    _gpu(
        "RTX-4090",
        24,
        1.008,
        165.2,
        165.2,
        330.3,
        660.6,
        "NVIDIA Ada GPU Architecture whitepaper, https://images.nvidia.com/aem-dam/Solutions/geforce/ada/"
        "nvidia-ada-gpu-architecture.pdf (FP32 accumulate)",
        aliases=("4090",),
    ),
    _gpu(
        "RTX-5090",
        32,
        1.792,
        209.5,
        209.5,
        419.0,
        838.0,
        "NVIDIA RTX Blackwell GPU Architecture whitepaper, https://images.nvidia.com/aem-dam/Solutions/geforce/"
        "blackwell/nvidia-rtx-blackwell-gpu-architecture.pdf (FP32 accumulate)",
        aliases=("5090",),
    ),
    _gpu(
        "MI300X",
        192,
        5.3,
        1307.4,
        1307.4,
        2614.9,
        2614.9,
        "AMD Instinct MI300X data sheet, https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html",
    ),
    _gpu(
        "MI325X",
        256,
        6.0,
        1307.4,
        1307.4,
        2614.9,
        2614.9,
        "AMD Instinct MI325X data sheet, https://www.amd.com/en/products/accelerators/instinct/mi300/mi325x.html",
    ),
    _gpu(
        "Gaudi2",
        96,
        2.45,
        432.0,
        432.0,
        865.0,
        None,
        "Intel Gaudi 2 AI accelerator white paper, https://www.intel.com/content/www/us/en/products/details/"
        "processors/ai-accelerators/gaudi2.html (MME peak)",
    ),
    _gpu(
        "Gaudi3",
        128,
        3.7,
        1835.0,
        1835.0,
        1835.0,
        None,
        "Intel Gaudi 3 AI accelerator white paper, https://www.intel.com/content/www/us/en/content-details/"
        "817486/intel-gaudi-3-ai-accelerator-white-paper.html (MME peak)",
    ),
    _gpu(
        "M2-Ultra-192GB",
        192,
        0.8,
        None,
        None,
        None,
        None,
        _APPLE,
        usable_fraction=0.75,
        note="unified memory: 75% usable by the GPU by default",
    ),
    _gpu(
        "M3-Max-128GB",
        128,
        0.4,
        None,
        None,
        None,
        None,
        _APPLE,
        usable_fraction=0.75,
        note="unified memory: 75% usable by the GPU by default",
    ),
    _gpu(
        "M3-Ultra-512GB",
        512,
        0.819,
        None,
        None,
        None,
        None,
        _APPLE,
        usable_fraction=0.75,
        note="unified memory: 75% usable by the GPU by default",
    ),
    _gpu(
        "M4-Max-128GB",
        128,
        0.546,
        None,
        None,
        None,
        None,
        _APPLE,
        usable_fraction=0.75,
        note="unified memory: 75% usable by the GPU by default",
    ),
)


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_BY_KEY: dict[str, Accelerator] = {}
for _a in CATALOGUE:
    for _k in (_a.name, *_a.aliases):
        _BY_KEY[_key(_k)] = _a


def find_accelerator(name: str) -> Accelerator:
    """`"h100"`, `"H100-SXM"`, `"rtx 4090"` → the catalogue entry; a usage error listing the catalogue else."""
    k = _key(name)
    found = _BY_KEY.get(k) or _BY_KEY.get(k.removeprefix("nvidia").removeprefix("amd").removeprefix("rtx"))
    if found is None:
        names = ", ".join(a.name for a in CATALOGUE)
        raise UsageError(
            f"--gpu: unknown accelerator {name!r}; the catalogue has {names} (or give --gpu-memory 80GiB)",
            rule="gpu-known",
        )
    return found


def custom_accelerator(memory_bytes: int) -> Accelerator:
    """An accelerator known only by its memory (`--gpu-memory`): no speed bounds."""
    if memory_bytes <= 0:
        raise UsageError(f"--gpu-memory must be positive, got {memory_bytes}", rule="gpu-memory")
    return Accelerator("custom", memory_bytes, 0.0, None, None, None, None, "--gpu-memory")
