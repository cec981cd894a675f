"""torch's FlopCounterMode counts leanconv's native ops from the first forward of a process:
their formulas are registered when leanconv is imported, not when the kernels are first used
(FlopCounterMode copies its formula table when it is created)."""

import json
import subprocess
import sys

import pytest

FIRST_FORWARD = """
import json, torch
from torch.utils.flop_counter import FlopCounterMode
import leanconv
from leanconv.kernels import native
model = leanconv.create_model({name!r}).eval()
x = torch.randn(1, 3, 224, 224)
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    model(x)
print(json.dumps({{"flops": counter.get_total_flops(),
                  "native_ops": sum(n for op, n in counter.get_flop_counts()["Global"].items()
                                    if "leanconv" in str(op)),
                  "native": native() is not None,
                  "macs": leanconv.profile(model, (1, 3, 224, 224)).totals["macs_executed"]}}))
"""


@pytest.mark.parametrize("name", ["mobilenet_v1_100", "mixnet_s"])
def test_flop_counter_counts_native_ops_on_the_first_forward(name):
    run = subprocess.run([sys.executable, "-c", FIRST_FORWARD.format(name=name)],
                         capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["flops"] == 2 * result["macs"]
    if result["native"]:  # the count above went through leanconv's op at least once
        assert result["native_ops"] > 0
