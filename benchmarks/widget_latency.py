"""Widget update latency, measured in Python (a control change to new image bytes).

* ConvolutionPlayground on a 512x512 photo: one position-slider move. Target: median < 20 ms.
* ActivationExplorer and FilterExplorer: one control change redrawing a 64-channel layer, on a batch of
  8 images. Target: median < 50 ms on CPU.
* OcclusionExplorer (lesson 06): one move of the square on a digit (LeNet-1) and on a 224 x 224 photo
  (AlexNet, its occlusion map already computed). Target: median < 100 ms.
* DigitCanvas (lesson 02): one stroke segment while drawing, with a refresh of the answer, the
  probabilities and the feature maps. Target: median < 100 ms.
* GlanceView (lessons 02, 05): LeNet-1 drawn whole (input, every map, the vector, the probabilities),
  one refresh while the pen moves on the canvas it follows, and one from a new snapshot of fit (the
  weights loaded into its copy). Target: median < 100 ms.
* UnitExplorer (lesson 08): one step of making an image for a unit of the reference AlexNet at 64 x 64,
  for conv1 and for conv5 (make runs as many as the steps slider says). Target: median < 100 ms a step.

The browser-side figure (slider move to new image on screen) comes from the browser test and is
written to test-artifacts/browser/playground_latency.json.

    python benchmarks/widget_latency.py
"""

import json
from pathlib import Path

import numpy as np
import torch
from skimage import data as photos
from skimage.transform import resize

from common import machine, summary_ms, timings

from course_lib import widgets


def playground_latency():
    img = (resize(photos.chelsea(), (512, 512, 3)) * 255).astype(np.uint8)
    pg = widgets.ConvolutionPlayground(img)
    positions = iter(range(10**6))

    def move():
        pg.col.value = next(positions) % (pg.col.max + 1)

    return timings(move, repeat=60)


def explorers_latency():
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("conv1", torch.nn.Conv2d(3, 64, 5, padding=2))
    net.add_module("act1", torch.nn.ReLU())
    net.add_module("conv2", torch.nn.Conv2d(64, 64, 3, padding=1))
    net.add_module("act2", torch.nn.ReLU())
    images = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8)
    ax = widgets.ActivationExplorer(net, images, layers=["act1", "act2"])
    counter = iter(range(10**6))

    def next_image():
        ax.image.value = next(counter) % 8

    fx = widgets.FilterExplorer(net, layers=["conv1", "conv2"])

    def switch_layer():
        fx.layer.value = "conv2" if fx.layer.value == "conv1" else "conv1"

    return timings(next_image), timings(switch_layer)


def attribution_latency():
    from course_lib import digits, env, models

    x, _ = digits.for_profile("test", env.profile("smoke"))
    lenet = models.LeNet1().eval()
    occ = widgets.OcclusionExplorer(lenet, x[:4], window=6)
    positions = iter(range(10**6))

    def move_square(o):
        def move():
            o.col.value = next(positions) % (o.col.max + 1)
        return move

    digit = timings(move_square(occ), repeat=60)
    photo = torch.from_numpy((resize(photos.chelsea(), (224, 224, 3)) * 255).astype(np.uint8)).permute(2, 0, 1)
    alex = widgets.OcclusionExplorer(models.AlexNet(num_classes=10).eval(), photo[None], window=32)
    cat = timings(move_square(alex), repeat=20)

    canvas = widgets.DigitCanvas(lenet)
    canvas.LIVE_EVERY_S = 0.0
    canvas._down(140, 40)
    points = iter(range(10**6))

    def pen_move():
        i = next(points) % 200
        canvas._move(100 + i // 2, 40 + i)

    return digit, cat, timings(pen_move, repeat=60)


def glance_latency():
    from course_lib import digits, env, models, train

    x, y = digits.for_profile("test", env.profile("smoke"))
    torch.manual_seed(0)
    lenet = models.LeNet1()
    view = widgets.GlanceView(lenet, x[0])
    canvas = widgets.DigitCanvas(lenet)
    canvas.LIVE_EVERY_S = 0.0
    view.follow(canvas)
    canvas._down(140, 40)
    points = iter(range(10**6))

    def pen_move():            # the canvas's own refresh, then the glance's
        i = next(points) % 200
        canvas._move(100 + i // 2, 40 + i)

    together = timings(pen_move, repeat=40)
    alone = timings(lambda: view.show(canvas.input()), repeat=40)
    history = train.fit(lenet, (x[:512], y[:512]), epochs=1, progress=False, device="cpu", probe=x[:1],
                        snapshot_steps=[2, 4, 6])
    snapshots = iter(history.snapshots * 100)
    from_fit = timings(lambda: view.add_snapshot(next(snapshots)), repeat=40)
    return alone, together, from_fit


def unit_explorer_latency():
    from course_lib import references
    from course_lib.widgets import UnitExplorer

    alexnet, _ = references.load_network("alexnet-imagenette")
    explorer = UnitExplorer(alexnet, size=64)
    explorer.steps.value = 20
    out = {}
    for layer in ("act1", "act5"):
        explorer.layer.value = layer
        explorer.update()                                       # warm-up
        per_step = []
        for unit in range(5):
            explorer.unit.value = unit
            per_step.append(timings(explorer.update, repeat=1, warmup=0)[0] / explorer.steps.value)
        out[layer] = per_step
    return out


def main():
    print(machine())
    print(f"ConvolutionPlayground, 512x512 photo, slider move: {summary_ms(playground_latency())} "
          "(target median < 20 ms)")
    act, filt = explorers_latency()
    print(f"ActivationExplorer, 64-channel layer, batch of 8, image change: {summary_ms(act)} (target median < 50 ms)")
    print(f"FilterExplorer, 64 filters, layer change: {summary_ms(filt)} (target median < 50 ms)")
    digit, cat, pen = attribution_latency()
    print(f"OcclusionExplorer, LeNet-1 on a digit, square move: {summary_ms(digit)} (target median < 100 ms)")
    print(f"OcclusionExplorer, AlexNet on a 224x224 photo, square move: {summary_ms(cat)} (target median < 100 ms)")
    print(f"DigitCanvas, LeNet-1, pen move with refresh: {summary_ms(pen)} (target median < 100 ms)")
    drawn, together, snapshot = glance_latency()
    print(f"GlanceView, LeNet-1 whole, one refresh for a drawn digit: {summary_ms(drawn)} (target median < 100 ms)")
    print(f"DigitCanvas with a GlanceView following it, one pen move: {summary_ms(together)}")
    print(f"GlanceView, LeNet-1 whole, refresh from a snapshot of fit: {summary_ms(snapshot)} (target median < 100 ms)")
    for layer, per_step in unit_explorer_latency().items():
        print(f"UnitExplorer, reference AlexNet at 64 px, {layer}, one step of make: {summary_ms(per_step)} "
              "(target median < 100 ms)")
    browser = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser" / "playground_latency.json"
    if browser.exists():
        ms = sorted(json.loads(browser.read_text())["ms"])
        print(f"browser (last browser test run): slider move -> new image on screen, median {ms[len(ms) // 2]:.0f} ms "
              "(target < 150 ms)")
    else:
        print("browser figure: run the browser tests first (make test)")


if __name__ == "__main__":
    main()
