"""The course's networks: LeNet-1 (1989, and its fully connected simplification), LeNet-5 (1998) and AlexNet
(2012: two streams, one stream, and on two devices), and AlexNet with the next decade's changes (lesson 09).

Layers have plain names (``conv1``, ``act1``, ``pool1``, ...) so that lessons can ask for them by name when
recording activations or showing filters. One file a family: :mod:`.parts` (LeNet-1's pieces and the input
checks), :mod:`.lenet`, :mod:`.alexnet`, :mod:`.two_devices`; everything is reachable as ``models.NAME``. Lesson 09's
:mod:`.alexnet_variants` is imported by that lesson alone (``from course_lib.models import alexnet_variants``).
"""

from .alexnet import AlexNet, StreamLocalResponseNorm
from .lenet import LeNet1, LeNet1Simplified, LeNet5
from .parts import LENET1_TABLE, DigitFrame, SparseConv2d, Subsample, check_classes, check_input, count_parameters
from .two_devices import SplitConv2d, SplitLinear, TwoDeviceAlexNet

__all__ = ["AlexNet", "StreamLocalResponseNorm", "LeNet1", "LeNet1Simplified", "LeNet5", "LENET1_TABLE", "DigitFrame",
           "SparseConv2d", "Subsample", "check_classes", "check_input", "count_parameters", "SplitConv2d",
           "SplitLinear", "TwoDeviceAlexNet"]
