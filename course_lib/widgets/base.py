"""The base of the course's interactive widgets: an object shown in Jupyter as its ipywidgets box, with a
static picture of itself for pages without a kernel."""

from __future__ import annotations

import html
import io


class WidgetView:
    """An object shown in Jupyter as its ``widget`` (an ipywidgets box), by ``display(obj)`` or as a
    cell's last line: the base of the course's interactive widgets.

    Beside the live widget it stores a static picture (:meth:`snapshot`) in the same output, which
    JupyterLab ignores while it can draw the widget, and which a page without a kernel (the course
    site, GitHub) shows instead of nothing."""

    widget: object
    SNAPSHOT_WIDTH = 960  # pixels in a row of the static picture before it wraps

    def snapshot(self) -> bytes | None:
        """PNG bytes of the widget's pictures (its ``ipywidgets.Image`` views, in the order shown) laid
        out in rows on white, as the widget shows them now; None when it has no picture."""
        import ipywidgets as W
        from PIL import Image

        pictures = []

        def collect(widget):
            if isinstance(widget, W.Image) and widget.value and widget.format == "png":
                pictures.append(Image.open(io.BytesIO(bytes(widget.value))).convert("RGB"))
            for child in getattr(widget, "children", ()):
                collect(child)

        collect(self.widget)
        if not pictures:
            return None
        gap, rows, row = 8, [], []
        for picture in pictures:
            if row and sum(p.width + gap for p in row) + picture.width > self.SNAPSHOT_WIDTH:
                rows.append(row)
                row = []
            row.append(picture)
        rows.append(row)
        width = max(sum(p.width for p in r) + gap * (len(r) - 1) for r in rows)
        height = sum(max(p.height for p in r) for r in rows) + gap * (len(rows) - 1)
        sheet = Image.new("RGB", (width, height), "white")
        y = 0
        for r in rows:
            x, tallest = 0, max(p.height for p in r)
            for picture in r:
                sheet.paste(picture, (x, y + (tallest - picture.height) // 2))
                x += picture.width + gap
            y += tallest + gap
        out = io.BytesIO()
        sheet.save(out, format="PNG")
        return out.getvalue()

    def _ipython_display_(self):
        import base64

        from IPython.display import display

        bundle = self.widget._repr_mimebundle_()
        picture = self.snapshot()
        if picture is not None:
            bundle["image/png"] = base64.b64encode(picture).decode("ascii")
        display(bundle, raw=True)


def probability_bars(probs, names: list[str]) -> str:
    """HTML bars of class probabilities (a sequence or 1-D tensor in [0, 1]) named by ``names``."""
    values = probs.tolist() if hasattr(probs, "tolist") else list(probs)
    rows = "".join(
        f'<div class="prob-row" style="display:flex;align-items:center;gap:4px;height:16px">'
        f'<span style="width:70px;text-align:right;overflow:hidden">{html.escape(n)}</span>'
        f'<span style="display:inline-block;height:11px;width:{120 * p:.0f}px;background:#3a7"></span>'
        f'<span>{100 * p:.1f} %</span></div>' for n, p in zip(names, values))
    return f'<div class="prob-bars" style="font-size:11px">{rows}</div>'
