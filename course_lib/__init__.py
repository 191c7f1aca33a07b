"""course_lib: the helper library of the ConvNet course (LeNet-1 to AlexNet).

Modules, one job each: ``env`` (device, seed, profile), ``data`` (datasets, the shipped MNIST sample,
loaders), ``models``, ``train`` (fit, evaluate, checkpoints), ``measure`` (activations, sparsity, dead
units, smoothness, frequency, color, resemblance, receptive fields), ``claims`` (the course's claims as
experiments over seeds, with their controls), ``recipes`` (the AlexNet-on-Imagenette recipe lessons 04
and 05 share), ``viz`` (grids and plots), ``widgets`` (interactive explorers), ``assign`` (instructor
tooling).
"""

__version__ = "0.1.0"
