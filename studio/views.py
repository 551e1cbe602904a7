"""The one table from a pane declaration (engine.panes) to the widget that draws it.

Every widget here speaks the protocol in :mod:`studio.widgets.view`. A family that needs a
new kind of view declares a pane class in ``engine/panes.py``, writes one widget file under
``studio/widgets/`` and adds one line to :data:`VIEWS`.
"""

from __future__ import annotations

from textual.widget import Widget

from engine import panes
from engine.schema import ParamSpec
from studio.widgets.attention import AttentionView
from studio.widgets.controls import ControlRow
from studio.widgets.curves import LossCurves
from studio.widgets.diffusion_views import ActionImage, PlotView, PromptImagePanel, TimelineView
from studio.widgets.fill import FillPanel
from studio.widgets.hidden_state import HiddenStateView
from studio.widgets.image_view import ImageView
from studio.widgets.latent_map import LatentMap
from studio.widgets.model_view import ModelView
from studio.widgets.piano_roll import PianoRoll
from studio.widgets.raster import RasterView
from studio.widgets.sampler import SamplerPanel, TextSample
from studio.widgets.translate import TranslatePanel
from studio.widgets.view import View

VIEWS: dict[type, type[View]] = {
    panes.Curves: LossCurves,
    panes.ImagePane: ImageView,
    panes.PointsPane: LatentMap,
    panes.Controls: ControlRow,
    panes.AttentionPane: AttentionView,
    panes.TranslatePane: TranslatePanel,
    panes.SamplerPane: SamplerPanel,
    panes.TextPane: TextSample,
    panes.PlotPane: PlotView,
    panes.TimelinePane: TimelineView,
    panes.PromptImagePane: PromptImagePanel,
    panes.ActionPane: ActionImage,
    panes.PianoRollPane: PianoRoll,
    panes.HiddenStatePane: HiddenStateView,
    panes.RasterPane: RasterView,
    panes.ModelPane: ModelView,
    panes.FillPane: FillPanel,
}


def build_view(pane: panes.Pane, specs: dict[str, ParamSpec], values: dict) -> Widget:
    """The widget for one pane of a recipe's dashboard."""
    view = VIEWS.get(type(pane))
    if view is None:
        raise TypeError(f"no view is registered for {type(pane).__name__} (add it to studio/views.py)")
    missing = [name for name in pane.settings if name not in specs]
    if missing:
        raise TypeError(f"{type(pane).__name__} {pane.id!r} names parameters the recipe lacks: {', '.join(missing)}")
    return view.from_pane(pane, specs, values)
