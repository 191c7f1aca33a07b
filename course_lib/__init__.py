"""course_lib: the helper library of the ConvNet course (LeNet-1 to AlexNet).

One job a module, in floors: a module imports only from its own floor or the floors below it, never in a
circle. :data:`FLOORS` below is the one table of them: ``tests/test_structure.py`` enforces it (lazy imports
too) and checks DESIGN.md's table against it. A new module gets its row here first.
"""

__version__ = "0.1.0"

# The floors, lowest first: (floor's name, {module or package: its job}). A module's floor is its row's index.
FLOORS = (
    ("where it runs", {
        "env": "device, seeding, Colab, the active profile and its sizes, the machine line every lesson prints",
        "files": "the data folder and atomic writes",
        "checks": "the checks of every public function's numbers"}),
    ("data", {
        "digits": "MNIST through torchvision (downloaded, or four files put by hand), the shipped 5,000-digit sample",
        "imagenette": "Imagenette/Imagewoof: archives, checksums, safe extraction, a folder the learner has",
        "image_folders": "the one uint8 image cache of an ImageNet-layout folder",
        "loader": "the device-resident batch loader and normalization",
        "augment": "crops, flips and shifts on the device"}),
    ("networks", {
        "models": "LeNet-1 (1989, and its simplification), LeNet-5, AlexNet (two streams, one stream, two "
                  "devices), lesson 09's AlexNet variants"}),
    ("around a network", {
        "layers": "finding layers, eval mode, recording activations and their histograms (hooks that clean up)",
        "history": "what happened in training, snapshots",
        "checkpoints": "atomic, resumable checkpoints"}),
    ("training", {
        "train": "fit (the one loop: AMP, channels-last, checkpoints), evaluate, predict",
        "optim": "the optimizer, one step, the learning-rate schedules and the range test"}),
    ("looking inside", {
        "measure": "activations and filters in numbers",
        "receptive_fields": "receptive fields computed and measured",
        "attribution": "occlusion, saliency, Grad-CAM (captum): what made it decide",
        "made_images": "images made for a unit, fooling images",
        "references": "the shipped trained networks"}),
    ("what lessons share", {
        "trained": "train or load a lesson's network"}),
    ("claims", {
        "claims": "each claim as an experiment over seeds, with its control and verdict; one module a lesson"}),
    ("pictures and exercises", {
        "viz": "plots, the network at a glance",
        "diagrams": "diagrams",
        "exercises": "the exercise checks and their feedback",
        "own_work": "is an answer the learner's own work: what the learner's function runs, traced",
        "widgets": "the interactive widgets"}),
    ("tools", {
        "distributed": "the torchrun command line",
        "instructor": "notebooks, solutions, checks, words, grading, releases, lock, site, reference builds"}),
)


def floor_of() -> dict[str, int]:
    """``{module or package name: its floor}`` from :data:`FLOORS` (e.g. ``{"env": 0, ..., "instructor": 9}``)."""
    return {module: floor for floor, (_, jobs) in enumerate(FLOORS) for module in jobs}
