"""What a candidate costs in bytes: file size, parameters, MACs and peak activation memory."""

from __future__ import annotations

from evaluators.runtime import peak_activation_bytes


def size_report(model_bytes: bytes, model=None) -> dict[str, int]:
    """``tflite_bytes`` and ``peak_activation_bytes`` of the converted model; ``params`` and
    ``macs`` too when the Keras ``model`` it came from is given (see :func:`space.model.static_costs`).
    """
    report = {"tflite_bytes": len(model_bytes), "peak_activation_bytes": peak_activation_bytes(model_bytes)}
    if model is not None:
        from space.model import static_costs

        costs = static_costs(model)
        report.update(params=costs.params, macs=costs.macs)
    return report
