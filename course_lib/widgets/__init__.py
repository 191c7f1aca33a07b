"""The course's interactive widgets (ipywidgets), one module each, all on :class:`.base.WidgetView` (a live
widget in JupyterLab or Colab, a static picture of itself on pages without a kernel):

* :class:`ConvolutionPlayground` — a filter sliding over a photo (lesson 01);
* :class:`ActivationExplorer`, :class:`FilterExplorer` — a network's feature maps and filters, across
  training (lessons 03, 05);
* :class:`DigitCanvas` — draw a digit for LeNet-1 (02); :class:`OcclusionExplorer` — hide a square of the
  input (06); :class:`ReceptiveFieldExplorer` — what one unit sees (02);
* :class:`UnitExplorer` — the image made for one unit (08);
* :class:`GlanceView` — one input through every layer, live while you draw or train (02, 05).

Pictures go to the browser as PNG bytes; each widget's ``update()`` does one full refresh synchronously,
which is what the benchmarks time. A control change never raises at the learner.
"""

from .base import WidgetView
from .digit_canvas import DigitCanvas, from_drawing
from .explorers import ActivationExplorer, FilterExplorer
from .glance import GlanceView
from .occlusion import OcclusionExplorer
from .playground import ConvolutionPlayground
from .receptive_field import ReceptiveFieldExplorer
from .unit_explorer import UnitExplorer

__all__ = ["ActivationExplorer", "ConvolutionPlayground", "DigitCanvas", "FilterExplorer", "GlanceView",
           "OcclusionExplorer", "ReceptiveFieldExplorer", "UnitExplorer", "WidgetView", "from_drawing"]
