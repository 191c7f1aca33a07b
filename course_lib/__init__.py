"""course_lib: the helper library of the ConvNet course (LeNet-1 to AlexNet).

Modules, one job each: ``env`` (device, seed, profile), ``files`` (the data folder, atomic writes),
``digits`` (MNIST and the shipped 5,000-digit sample), ``imagenette`` (archives, checksums, safe
extraction, the uint8 cache), ``loader`` (the device-resident batch loader and normalization),
``augment`` (crops and flips on the device), ``models``, ``train`` (fit, train_step, the schedule,
evaluate, checkpoints), ``measure`` (activations, sparsity, dead units, smoothness, frequency, color,
resemblance, receptive fields, snapshots), ``claims`` (the course's claims as experiments over seeds,
with their controls), ``recipes`` (the AlexNet recipe lessons 04 and 05 share), ``viz`` (grids and
plots), ``playground``, ``explorers`` and ``probes`` (the widgets), ``assign`` (instructor tooling), ``site`` (the course website).
"""

__version__ = "0.1.0"
