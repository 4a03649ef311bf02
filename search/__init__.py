"""The command line and the loop that ties space -> evaluators -> studies.

TensorFlow is configured (tf-keras, quiet logs) by :mod:`space._tf`, which every TensorFlow
import goes through.
"""

__version__ = "0.1.0"
