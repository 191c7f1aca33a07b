"""course_lib: the helper library of the ConvNet course (LeNet-1 to AlexNet).

One job a module, in floors: a module imports only from its own floor or the floors below it, never in a
circle (``tests/test_structure.py`` checks it, lazy imports too).

0. where it runs — ``env`` (device, seeding, profile, the machine), ``files`` (the data folder, atomic
   writes), ``checks`` (the checks of every public function's numbers)
1. data — ``digits`` (MNIST, the shipped 5,000-digit sample), ``imagenette`` (archives, checksums, safe
   extraction, a folder you have), ``image_folders`` (the one image cache), ``loader`` (the device-resident
   batch loader and normalization), ``augment`` (crops, flips and shifts on the device)
2. networks — ``models`` (LeNet-1, LeNet-5, AlexNet)
3. around a network — ``layers`` (finding layers, eval mode, recording activations), ``history`` (what
   happened in training, snapshots), ``checkpoints`` (atomic, resumable)
4. training — ``train`` (fit, evaluate, predict, the one training loop), ``optim`` (the optimizer, one step, the
   learning-rate schedules and the range test)
5. looking inside — ``measure`` (activations and filters in numbers), ``receptive_fields``, ``attribution``
   (what made it decide), ``made_images`` (images made for a unit, fooling images), ``references`` (the
   shipped trained networks)
6. what lessons share — ``trained`` (train or load a lesson's network)
7. claims — ``claims`` (each claim as an experiment over seeds, with its control and verdict)
8. pictures and exercises — ``viz``, ``diagrams``, ``exercises``, ``own_work``; ``widgets`` (the interactive ones)
9. tools — ``distributed`` (the torchrun command line), ``instructor`` (notebooks, grading, releases, lock,
   site, reference builds)
"""

__version__ = "0.1.0"
