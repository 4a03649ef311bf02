"""Size and memory of a real converted model."""

from evaluators.size import size_report
from tests.evaluators.latency_helpers import unet_bytes


def test_size_report_of_a_tiny_unet():
    from space.model import build
    from space.spec import uniform

    model = build(uniform("standard", depth=3, base_width=8, input_size=32), seed=0)
    report = size_report(unet_bytes(), model)
    assert report["tflite_bytes"] == len(unet_bytes())
    assert report["params"] == model.count_params()
    assert report["params"] * 4 < report["tflite_bytes"] < report["params"] * 4 + 100_000  # float32 weights
    assert report["macs"] > report["params"]
    assert report["peak_activation_bytes"] > 0
    assert set(size_report(unet_bytes())) == {"tflite_bytes", "peak_activation_bytes"}
