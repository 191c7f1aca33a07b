"""AlexNet on Imagenette in the `gpu` profile: top-1 accuracy and wall time (cache build apart).

Target: >= 85 % top-1 in <= 10 minutes on one H100-class GPU. Needs the Imagenette-160 archive: the
script downloads it, or reads <data>/imagenette2-160.tgz put there by hand. Offline with no archive it
says so and stops (exit code 2); `--offline` runs the same schedule on the small folder of
scikit-image photos instead, which measures speed only.

    python benchmarks/alexnet_imagenette.py [--offline] [--epochs N] [--compile]
"""

import argparse
import sys
import time


from common import machine, sync

from course_lib import augment, env, files, imagenette, models, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--offline", action="store_true", help="use the offline photo folder (speed only)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()
    P = env.profile("gpu")
    device = env.device()
    print(machine())
    cache = round(P.image_size * 8 / 7)  # random crops of P.image_size, as 224 of 256
    start = time.perf_counter()
    if args.offline:
        root = imagenette.offline_folder(files.data_root() / "benchmark-500", train_per_class=500, val_per_class=50)
        tr = imagenette.load_split("train", root=root, download=False, resolution=cache)
        va = imagenette.load_split("val", root=root, download=False, resolution=cache)
        what = "offline scikit-image photos (speed only, accuracy NOT comparable)"
    else:
        try:
            tr = imagenette.load_split("train", size=160, resolution=cache)
            va = imagenette.load_split("val", size=160, resolution=cache)
        except (RuntimeError, FileNotFoundError) as err:
            print(f"Imagenette unavailable: {err}\nRun with --offline to measure speed on local photos.")
            sys.exit(2)
        what = "Imagenette-160"
    cache_seconds = time.perf_counter() - start
    epochs = args.epochs or P.alexnet_epochs
    env.seed_everything(0)
    model = models.AlexNet(num_classes=len(tr.classes))
    sync(device)
    start = time.perf_counter()
    history = train.fit(model, (tr.images, tr.labels), epochs=epochs, lr=P.alexnet_lr, batch_size=P.alexnet_batch_size,
                        weight_decay=5e-4, label_smoothing=0.1, augment=augment.crop_flip(P.image_size),
                        compile=args.compile, progress=False)
    sync(device)
    seconds = time.perf_counter() - start
    result = train.evaluate(model, (augment.center_crop(va.images, P.image_size), va.labels))
    print(f"alexnet_imagenette: {what}, {len(tr.labels)} train / {len(va.labels)} val images at {P.image_size} px, "
          f"{epochs} epochs, batch {P.alexnet_batch_size}")
    print(f"  top-1 {100 * result['accuracy']:.1f} % (target >= 85 %), training {seconds:.0f} s (target <= 600 s), "
          f"{history.last['images_per_s']:,.0f} images/s in the last epoch; cache {cache_seconds:.0f} s (apart)")


if __name__ == "__main__":
    main()
