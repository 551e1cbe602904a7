"""Run control for a lesson: the settings the next run starts with, starting, continuing and
asking a run's engine. It holds the :class:`Bridge` and returns what happened; the lesson
screen decides what to show (it never calls back into the screen)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.rundir import RunDir
from engine.runs import ACTIVE, CONTINUABLE, create_run, newest_run_of
from studio.bridge import Bridge
from studio.messages import RunSnapshot


SHOWN_ON_REOPEN = (*ACTIVE, "finished", "stopped")  # a lesson reopens on its newest run in these states


def last_run_of(lesson: str) -> tuple[RunDir, str] | None:
    """The newest run of ``lesson`` and its state, when a reopened lesson should show it: it
    still trains, or it finished or was stopped (its charts and views are the learner's
    work). Only the newest run is looked at; one that failed or was interrupted, and every
    older run, are in the runs list."""
    last = newest_run_of(lesson)
    return last if last is not None and last[1] in SHOWN_ON_REOPEN else None


@dataclass(frozen=True)
class Outcome:
    """What a request for the engine came to: ``ok`` when it can be (or was) sent;
    ``relaunched`` when a finished run's model was loaded again (the screen follows the run
    anew); ``message`` for the learner, with its ``severity``."""

    ok: bool
    message: str = ""
    severity: str = "information"
    relaunched: bool = False


class RunControl:
    def __init__(self, recipe: str, lesson_id: str, params: dict) -> None:
        self.recipe, self.lesson_id = recipe, lesson_id
        self.params = dict(params)
        """The values a new run starts with; the run's own values while one is shown."""
        self.bridge = Bridge()

    @property
    def run(self) -> RunDir | None:
        return self.bridge.run

    def start(self, params: dict | None = None) -> RunDir:
        """A new run with ``params`` (default: the current values). Raises
        :class:`engine.runs.RunError` on a bad value; nothing is created then. A finished
        run's engine still serving its views is let go first."""
        if params is not None:
            self.params = dict(params)
        rd = create_run(self.recipe, dict(self.params), None, "auto", None, lesson=self.lesson_id)
        if self.bridge.run is not None and self.bridge.engine_alive():
            self.bridge.send("stop")
        self.bridge.launch(rd)
        return rd

    def continue_run(self) -> RunDir | None:
        """Start an engine on the current run, from its checkpoint (raises RunDirError when it
        cannot: another engine is training it)."""
        rd = self.bridge.run
        if rd is not None:
            self.bridge.launch(rd)
        return rd

    def attach(self, rd: RunDir, resume: bool = False) -> None:
        """Show ``rd``; with ``resume``, continue it too when no engine works on it."""
        if resume and not rd.engine_alive():
            self.bridge.launch(rd)
        else:
            self.bridge.attach(rd)

    def engine_for(self, what: str, snap: RunSnapshot | None) -> Outcome:
        """A view needs a loaded model (to redraw a picker's choice, to generate, to
        translate). While training, the engine is there; a finished run's model is loaded
        again, view-only. Otherwise says what to do."""
        rd = self.bridge.run
        if rd is None:
            return Outcome(False, f"There is no model yet to {what}: press s to start training (a few seconds "
                                  "of training already gives an answer, if a bad one).", "warning")
        if self.bridge.engine_alive():
            return Outcome(True)
        if not (snap and snap.state == "finished" and snap.has_checkpoint):
            hint = ("press u to continue training it" if snap and snap.state in CONTINUABLE and snap.has_checkpoint
                    else "press s to train one")
            return Outcome(False, f"No model is loaded to {what}: {hint}.", "warning")
        from engine.rundir import RunDirError

        try:
            self.bridge.launch(rd)  # finished: it loads the checkpoint and serves the views
        except RunDirError as e:
            return Outcome(False, str(e), "warning")
        return Outcome(True, f"Loading the trained model to {what} …", relaunched=True)

    def send_settings(self, settings: dict) -> list[str]:
        """Set the live values that differ from the current ones on the engine; returns the keys sent."""
        sent = []
        for key, value in settings.items():
            if self.params.get(key) != value:
                self.params[key] = value
                self.bridge.send("set", key=key, value=value)
                sent.append(key)
        return sent

    def ask(self, action: str, reply: str, args: dict) -> None:
        self.bridge.send("interact", name=action, reply=reply, **args)
