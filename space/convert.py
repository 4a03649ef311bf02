"""``to_tflite(model, quant, calibration) -> bytes``: TFLite conversion with post-training quantization."""

from __future__ import annotations

import numpy as np

from space import _tf
from space.spec import QuantSpec


def to_tflite(model, quant: QuantSpec | str = "float32", calibration: np.ndarray | None = None) -> bytes:
    """Convert a (stripped) tf-keras model to TFLite bytes.

    ``calibration``: float images (of the model's input size, or resized to it), needed by the modes
    whose policy ``calibrates``; the first ``quant.calibration_images`` are used. For a QAT mode (``int8-qat``)
    pass the QAT-trained model (its quantization parameters come from training; calibration images
    are still required by the converter); an un-annotated model is quantized post-training instead, which is how an
    untrained candidate is timed before any training is spent.
    """
    quant = QuantSpec(mode=quant) if isinstance(quant, str) else quant
    tf = _tf.tensorflow()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_inference_function(model)])
    quant.policy.configure(converter, tf)
    if quant.policy.calibrates:
        converter.representative_dataset = _representative(calibration, quant.calibration_images, quant.mode,
                                                           model.input_shape)
    if quant.io_type == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def _inference_function(model):
    """The model at batch size 1 as a concrete function.

    A fixed batch keeps TRANSPOSE_CONV's output shape static (no SHAPE/PACK ops) and lets dilated
    convolutions fold into CONV_2D. Converting without the Keras model as trackable object takes
    the graph-freezing path: about 0.8 s instead of 10 s, because exporting a SavedModel of the
    Keras model would retrace every layer.
    """
    tf = _tf.tensorflow()
    shape = [1, *model.input_shape[1:]]
    return tf.function(lambda images: model(images, training=False)).get_concrete_function(
        tf.TensorSpec(shape, tf.float32, name="image")
    )


def _representative(calibration, count, mode, input_shape):
    """Calibration batches of one image; images of the data's size are resized (bilinear) to a model
    of another input size (``--search-input-size``)."""
    if calibration is None or len(calibration) == 0:
        raise ValueError(f"calibration: quant mode {mode!r} needs calibration images; pass some from the training split")
    images = np.asarray(calibration[:count], dtype=np.float32)
    if images.shape[1:3] != tuple(input_shape[1:3]):
        images = _tf.tensorflow().image.resize(images, input_shape[1:3], antialias=True).numpy()

    def generate():
        for image in images:
            yield [image[None]]

    return generate
