"""course_lib: the helper library of the ConvNet course (LeNet-1 to AlexNet).

Modules, one job each: ``env`` (device, seed, profile), ``data`` (datasets, loaders), ``models``,
``train`` (fit, evaluate, checkpoints), ``measure`` (activations, dead filters, smoothness, color),
``viz`` (grids and plots), ``widgets`` (interactive explorers), ``assign`` (instructor tooling).
"""

__version__ = "0.1.0"
