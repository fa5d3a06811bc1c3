"""ZeroGPU on a Hugging Face Space: `@gpu(seconds)` around work that needs the GPU for one call.

    from labs.gpu import gpu, on_zero_gpu
    @gpu(60)
    def generate_pairs(...): ...          # on ZeroGPU a GPU is attached for the call; elsewhere a plain call

On a ZeroGPU Space (SPACES_ZERO_GPU set by the platform) this is the `spaces` package's
`spaces.GPU(duration=seconds)`; everywhere else - a laptop, a GPU box, a CPU Space - it returns the function
unchanged, so nothing imports `spaces` there. What fits one call: generation, evaluation batches and short
trainings of a small model; a run longer than the call cannot stop and resume across calls, so the training
tabs say when a preset is too long for ZeroGPU (`fits(seconds)`).
"""
from __future__ import annotations

import os

MAX_CALL_S = 120  # the longest ZeroGPU call the lab asks for (free users' daily quota is a few minutes)


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def gpu(duration: float = 60):
    def wrap(fn):
        if not on_zero_gpu():
            return fn
        import spaces  # present on ZeroGPU Spaces (PyPI `spaces`)
        return spaces.GPU(duration=int(duration))(fn)
    return wrap


def fits(seconds: float | None) -> tuple[bool, str]:
    """Whether work measured at `seconds` fits one ZeroGPU call, and the sentence to show."""
    if not on_zero_gpu():
        return True, ""
    if seconds is None:
        return False, "its length on a GPU is not measured; on ZeroGPU a run longer than one call is cut off"
    if seconds > MAX_CALL_S:
        return False, (f"it takes about {seconds:.0f} s, longer than one ZeroGPU call ({MAX_CALL_S} s); run it on "
                       "dedicated hardware or locally")
    return True, ""
