"""The protocol every dashboard widget speaks, so the lesson screen can place, feed and focus
any view without knowing what it is.

A view is a Textual widget that also inherits :class:`View` and overrides what it needs:

- ``from_pane(pane, specs, values)`` builds it from its pane declaration (engine.panes), the
  recipe's parameter specs by name and the current parameter values. The default passes
  the pane's id only.
- ``load(update)`` shows a new version of one of the artifacts its pane listens to
  (``pane.artifacts``); it must not raise on a file that is missing, half written or
  malformed (the run directory is untrusted input): keep what is shown and wait for the
  next version.
- ``set_values(values)`` shows the run's parameter values (a view with pickers or boxes).
- ``focus_input()`` takes the keyboard when its tab is shown; returns True if it did (a
  text box, a scrubber), so typing goes there rather than to the studio's keys. A view
  with ``focus_last = True`` (a row of pickers) is asked after the tab's other views.
- ``follow(snapshot)`` sees every run snapshot (the curves, which draw the metrics).
- ``ask_engine(request)`` posts a request as this view's; ``refused(message)`` hears that it
  will not be answered, and why.

A view that needs the engine posts :class:`studio.messages.AskEngine` (a request) or
:class:`studio.messages.PickSetting` (a live choice); it never reaches the engine itself.
The table from pane class to view is in ``studio/views.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.schema import ParamSpec
    from studio.messages import AskEngine, RunSnapshot

START_HINT = "press s to start training"  # how a run is started in the studio (a placeholder's {start})
WAIT_HINT = "waiting for the first ones"  # a placeholder's {start} while a run is starting or training
WAITING_STATES = ("new", "starting", "running", "paused")  # a run whose views are still to come


def leave_box(panel) -> None:
    """Esc in one of a panel's boxes: the panel takes the keys (the studio's keys work again).
    Esc on the panel itself goes on to the screen (back to the catalog), so Esc never
    strands the learner: one rule everywhere, a field first, then the lesson."""
    from textual.actions import SkipAction

    if panel.has_focus:
        raise SkipAction()
    panel.focus()


def placeholder(text: str, state: str | None = None) -> str:
    """A pane's placeholder with the studio's way of starting a run filled in; while the
    followed run (``state``) is starting or training, what is awaited instead."""
    return text.replace("{start}", WAIT_HINT if state in WAITING_STATES else START_HINT)


@dataclass(frozen=True)
class ArtifactUpdate:
    """A new version of one artifact, as the run's events describe it."""

    name: str
    path: str  # absolute, inside the run directory
    caption: str
    step: int  # the training step of the model that made it


def is_field(widget: object) -> bool:
    """A widget the learner types into or picks in (a box, a drop-down, a set of choices):
    Esc leaves it first, before it leaves the screen."""
    from textual.widgets import Input, RadioButton, RadioSet, Select, TextArea
    from textual.widgets._select import SelectCurrent

    return isinstance(widget, (Input, TextArea, Select, SelectCurrent, RadioSet, RadioButton))


class View:
    """Mixin with the protocol's defaults (a view inherits it beside its Textual base)."""

    focus_last = False

    @classmethod
    def from_pane(cls, pane: Any, specs: dict[str, ParamSpec], values: dict) -> View:
        return cls(id=pane.id)

    def load(self, update: ArtifactUpdate) -> None:
        pass

    def set_values(self, values: dict) -> None:
        pass

    def focus_input(self) -> bool:
        return False

    def ask_engine(self, request: AskEngine) -> None:
        """Post ``request`` as this view's (so a refusal comes back to it)."""
        self.post_message(request.set_sender(self))

    def refused(self, message: str) -> None:
        """The request this view sent (AskEngine) will not be answered: ``message`` says
        why and what to do. A view that shows "working …" while it waits says so instead."""

    def follow(self, snapshot: RunSnapshot) -> None:
        pass
