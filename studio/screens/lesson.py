"""The lesson screen: the lesson text beside a dashboard of live views, with run controls."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Markdown, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from engine.configs import (ActionPane, AttentionPane, Controls, Curves, ImagePane, PlotPane, PointsPane,
                            PromptImagePane, SamplerPane, TextPane, TimelinePane, TranslatePane, dashboard,
                            get_config_class, specs)
from engine.rundir import CONTINUABLE, RunDir, RunDirError
from studio.bridge import Bridge
from studio.lessons import CODE_LINK, Lesson, get_lesson
from studio.messages import QuizFinished, RunSnapshot
from studio.progress import mark_opened, record_quiz
from studio.widgets.code_view import CodeView
from studio.widgets.attention import AttentionView
from studio.widgets.controls import ControlRow
from studio.widgets.curves import LossCurves
from studio.widgets.diffusion_views import ActionImage, PlotView, PromptImagePanel, TimelineView
from studio.widgets.hyperparams import HyperparamForm
from studio.widgets.image_view import ImageView
from studio.widgets.latent_map import LatentMap
from studio.widgets.quiz import QuizPanel
from studio.widgets.sampler import SamplerPanel, TextSample
from studio.widgets.status_line import StatusLine
from studio.widgets.translate import TranslatePanel

ACTIVE = ("starting", "running", "paused")
LOG_FRESH_S = 15.0  # seconds an engine log line stays on screen
NARROW = 110  # columns below which the lesson text and the dashboard take turns


class LessonScreen(Screen):
    BINDINGS = [
        Binding("s", "start", "Start", tooltip="Start a new training run with the Settings values"),
        Binding("p", "pause", "Pause/resume", tooltip="Pause or resume training"),
        Binding("n", "step", "Step", tooltip="Run a single training step (pauses first)"),
        Binding("x", "stop", "Stop", tooltip="Stop training and save a checkpoint"),
        Binding("l", "toggle_lesson", "Lesson", tooltip="Show or hide the lesson text"),
        Binding("e", "export", "Export PNG", tooltip="Save the current samples as a PNG in the current folder"),
        Binding("u", "continue_run", "Continue", tooltip="Continue this stopped run from its last checkpoint"),
        Binding("r", "reset", "Reset", tooltip="Start over with fresh weights (the old run is kept)"),
        Binding("c", "checkpoint", "Checkpoint", tooltip="Save a checkpoint now", show=False),
        Binding("g", "sample_now", "Sample", tooltip="Refresh the samples now", show=False),
        Binding("R", "app.show_runs", "Runs", show=False),
        Binding("escape", "back", "Catalog", tooltip="Back to the catalog (training keeps going)"),
        *[Binding(str(i), f"tab({i})", f"Tab {i}", show=False) for i in range(1, 10)],
    ]

    def __init__(self, lesson_id: str, attach: str | None = None, resume: bool = False) -> None:
        super().__init__()
        self.lesson: Lesson = get_lesson(lesson_id)
        self.spec_list = specs(get_config_class(self.lesson.recipe))
        self.tabs = dashboard(self.lesson.recipe)
        self.panes = [pane for tab in self.tabs for pane in tab.panes]
        # What e exports: the first image the dashboard shows (the sample grid, the field).
        self.export_artifact = next((p.artifact for p in self.panes if isinstance(p, ImagePane)), None)
        self.params = {s.name: s.default for s in self.spec_list}
        self.bridge = Bridge()
        self.snapshot: RunSnapshot | None = None
        self._attach_to = attach
        self._resume = resume  # continue the attached run from its checkpoint on mount
        self._log_shown = ""  # what the log line and banner show now, to skip no-op updates
        self._banner_shown = ""

    # -- layout --
    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("GenStudio", "bold"), "  ›  ", self.lesson.family, "  ›  ",
                                   (self.lesson.title, "bold")), id="title-bar")
        with Horizontal(id="lesson-body"):
            with VerticalScroll(id="lesson-pane"):
                yield Markdown(self.lesson.body, id="lesson-text", open_links=False)
            with Vertical(id="dashboard"):
                yield Static("", id="banner")
                with TabbedContent(id="tabs"):
                    for n, tab in enumerate(self.tabs, start=1):
                        with TabPane(f"{n} {tab.title}", id=tab.id):
                            with (Vertical if tab.vertical else Horizontal)(classes="views"):
                                for pane in tab.panes:
                                    yield self._make_pane(pane)
                    n = len(self.tabs)
                    with TabPane(f"{n + 1} Settings", id="tab-settings"):
                        yield HyperparamForm(self.spec_list, self.params, id="form")
                    with TabPane(f"{n + 2} Code", id="tab-code"):
                        yield CodeView(self.lesson.code, id="code")
                    with TabPane(f"{n + 3} Quiz", id="tab-quiz"):
                        yield QuizPanel(self.lesson.id, self.lesson.quiz, id="quiz")
                yield Static("", id="log-line")
                yield StatusLine(id="status")
        yield Footer()

    def _make_pane(self, pane) -> Widget:
        by_name = {s.name: s for s in self.spec_list}
        if isinstance(pane, Controls):
            return ControlRow([by_name[name] for name in pane.params], self.params, pane.help, id=pane.id)
        if isinstance(pane, SamplerPane):
            return SamplerPanel([by_name[name] for name in pane.params], self.params, pane.artifact, id=pane.id)
        if isinstance(pane, TranslatePane):
            return TranslatePanel(by_name.get("beam"), self.params, pane.artifact, pane.examples, id=pane.id)
        if isinstance(pane, PromptImagePane):
            return PromptImagePanel(by_name.get("guidance"), self.params, pane.artifact, id=pane.id)
        return make_pane(pane)

    def on_mount(self) -> None:
        mark_opened(self.lesson.id)
        self.query_one(StatusLine).update_from(None)
        if self._attach_to:
            rd = RunDir(self._attach_to)
            if self._resume and not rd.engine_alive():
                self.bridge.launch(rd)
                self._follow_run(rd.read_config())
            else:
                self.attach(rd)
        self._apply_width(self.size.width)

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        narrow = width < NARROW
        if narrow != self.has_class("narrow"):
            self.set_class(narrow, "narrow")
            # Narrow: read first (the lesson text fills the screen until a run starts).
            self.set_class(narrow and self.bridge.run is None, "show-lesson")

    # -- following a run --
    def attach(self, rd: RunDir) -> None:
        cfg = rd.read_config()
        self.bridge.attach(rd)
        self._follow_run(cfg)

    def _follow_run(self, cfg: dict) -> None:
        self.params = dict(cfg["params"])
        self._show_params()
        self.snapshot = None
        self.follow()

    def _show_params(self) -> None:
        self.query_one(HyperparamForm).set_values(self.params)
        for row in self.query(ControlRow):
            row.set_values(self.params)
        for panel in self.query("SamplerPanel, TranslatePanel, PromptImagePanel"):
            panel.set_values(self.params)

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow")
    def follow(self) -> None:
        worker = get_current_worker()
        self.bridge.follow(self.post_message, lambda: worker.is_cancelled)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"Lost track of the run: {event.worker.error}", severity="error", timeout=10)

    @on(RunSnapshot)
    def show_snapshot(self, snap: RunSnapshot) -> None:
        if self.bridge.run is None or snap.run_dir != str(self.bridge.run.path):
            return  # a late snapshot of a run we have left
        old = self.snapshot
        self.snapshot = snap
        self.query_one(LossCurves).update_from(snap)
        self.query_one(StatusLine).update_from(snap)
        self.query_one(HyperparamForm).running = snap.state in ("running", "paused")
        # Only what changed is touched: every update costs the training process CPU time.
        old_versions = old.sample_versions if old and old.run_dir == snap.run_dir else {}
        for pane in self.panes:
            for name in pane_artifacts(pane):
                if name not in snap.samples or snap.sample_versions.get(name) == old_versions.get(name):
                    continue
                widget = self.query_one(f"#{pane.id}")
                if isinstance(widget, ImageView):
                    step = Path(snap.samples[name]).stem.rsplit("-", 1)[-1].lstrip("0") or "0"
                    widget.caption = f"{snap.captions.get(name, name)} · step {step}"
                    widget.path = snap.samples[name]
                elif isinstance(widget, LatentMap):
                    widget.load(snap.samples[name])
                else:
                    widget.load(snap.samples[name], name, snap.captions.get(name, ""))
        self._show_banner(snap)
        # The engine's latest log line, while it is news (or while nothing else is happening).
        fresh = bool(snap.logs) and (time.time() - snap.last_log_time < LOG_FRESH_S or snap.state == "starting")
        line = snap.logs[-1] if fresh else ""
        if line != self._log_shown:
            self._log_shown = line
            log_line = self.query_one("#log-line", Static)
            log_line.update(Text(line, style="dim italic"))
            log_line.display = fresh
        if old is None or snap.state != old.state:
            self.refresh_bindings()

    def _show_banner(self, snap: RunSnapshot) -> None:
        banner = self.query_one("#banner", Static)
        message = None
        if snap.state == "failed" and snap.errors:
            err = snap.errors[-1]
            message = Text.assemble(("✗ Training stopped: ", "bold"), err.get("message", ""), "\n",
                                    ("What to try: ", "bold"), err.get("hint", ""))
        elif snap.state == "interrupted":
            ck = " Its last checkpoint is intact: press u to continue from it." if snap.has_checkpoint else ""
            message = Text.assemble(("✗ The engine process ended unexpectedly", "bold"),
                                    f" at step {snap.step:,} (killed, or it crashed: see engine.log in the run folder).{ck}")
        elif snap.state == "finished":
            export = " e to export the samples," if self.export_artifact else ""
            message = Text(f"✓ Finished {snap.step:,} steps. Press s for a new run,{export} or take the quiz.")
        key = str(message) if message is not None else ""
        if key == self._banner_shown:
            return
        self._banner_shown = key
        banner.update(message or "")
        banner.set_class(message is not None, "visible")
        banner.set_class(snap.state in ("failed", "interrupted"), "error")

    # -- actions --
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Greys out (None) what cannot run in the current state; Textual then neither
        shows the key as active nor runs the action."""
        allowed = self._allowed(action)
        return True if allowed else None

    def _allowed(self, action: str) -> bool:
        snap = self.snapshot
        state = snap.state if snap else "new"
        if action == "start":
            return state not in ACTIVE
        if action in ("pause", "step", "stop", "checkpoint", "sample_now"):
            return state in ACTIVE
        if action == "reset":
            return self.bridge.run is not None
        if action == "continue_run":
            return bool(snap and state in CONTINUABLE and snap.has_checkpoint
                        and snap.step < snap.total_steps)
        if action == "export":
            return bool(snap and self.export_artifact in snap.samples)
        return True

    def _new_run(self, params: dict) -> None:
        from studio.cli import UsageError, create_run

        if self.bridge.run is not None and self.bridge.engine_alive():
            self.bridge.send("stop")  # a finished run's engine still serving its views

        try:
            rd = create_run(self.lesson.recipe, [f"{k}={v}" for k, v in params.items()], None, "auto", None,
                            lesson=self.lesson.id)
        except UsageError as e:
            self.notify(str(e), severity="error", timeout=8)
            return
        self.bridge.launch(rd)
        self._follow_run(rd.read_config())
        self.remove_class("show-lesson")
        self.query_one(StatusLine).show(Text(f"● starting {rd.name} …", style="bold cyan"))
        self.refresh_bindings()

    def action_start(self) -> None:
        self._new_run(self.params)

    def action_pause(self) -> None:
        if self.snapshot and self.snapshot.state == "paused":
            self.bridge.send("resume")
        else:
            self.bridge.send("pause")

    def action_step(self) -> None:
        self.bridge.send("step")

    def action_stop(self) -> None:
        self.bridge.send("stop")
        self.notify("Stopping: a checkpoint is being saved.")

    def action_reset(self) -> None:
        if self.snapshot and self.snapshot.state in ACTIVE:
            self.bridge.send("stop")
        self._new_run(self.params)
        self.notify("Started over with fresh weights; the previous run is kept in Runs.")

    def action_continue_run(self) -> None:
        rd = self.bridge.run
        if rd is None:
            return
        try:
            self.bridge.launch(rd)
        except RunDirError as e:
            self.notify(str(e), severity="warning")
            return
        self._follow_run(rd.read_config())
        self.notify(f"Continuing {rd.name} from step {self.snapshot.step if self.snapshot else 0:,}.")

    def action_checkpoint(self) -> None:
        self.bridge.send("checkpoint")
        self.notify("Checkpoint requested.")

    def action_sample_now(self) -> None:
        self.bridge.send("sample")

    def action_export(self) -> None:
        if not self.snapshot or self.export_artifact not in self.snapshot.samples:
            return
        src = Path(self.snapshot.samples[self.export_artifact])
        dest = Path.cwd() / f"genstudio-{self.bridge.run.name}-{src.stem.rsplit('-', 1)[-1]}.png"
        try:
            shutil.copyfile(src, dest)
        except OSError as e:
            self.notify(f"Could not export: {e}", severity="error")
            return
        self.notify(f"Saved the sample grid to {dest}", timeout=8)

    def action_tab(self, number: int) -> None:
        """Show the numbered dashboard tab (keys 1-9); on a narrow screen this hides the
        lesson text."""
        panes = list(self.query(TabPane))
        if 1 <= number <= len(panes):
            self._show_tab(panes[number - 1].id)
            self.remove_class("show-lesson")

    def _show_tab(self, tab_id: str) -> None:
        # Focus left inside a hidden tab would pull that tab back to the front.
        if self.focused is not None and tab_id not in [a.id for a in self.focused.ancestors]:
            self.set_focus(None)
        self.query_one(TabbedContent).active = tab_id

    @on(TabbedContent.TabActivated)
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A tab with a text box (the prompt, the sentence to translate) takes the keys at
        once, so typing goes into the box rather than starting a run."""
        for panel in event.pane.query("SamplerPanel, TranslatePanel, PromptImagePanel, TimelineView, ActionImage"):
            panel.focus_input()
            break

    def action_toggle_lesson(self) -> None:
        if self.has_class("narrow"):
            self.toggle_class("show-lesson")
        else:
            self.toggle_class("hide-lesson")

    def action_back(self) -> None:
        if self.snapshot and self.snapshot.state in ACTIVE:
            self.app.notify("Training keeps going in the background; Runs (R) reattaches to it.")
        self.workers.cancel_group(self, "follow")
        self.app.pop_screen()

    def on_unmount(self) -> None:
        """Leaving the lesson (or quitting): a finished run's engine, kept for the views,
        is no longer needed. Training in progress keeps going."""
        if not (self.snapshot and self.snapshot.state in ACTIVE) and self.bridge.engine_alive():
            self.bridge.send("stop")

    # -- pickers, form, links, quiz --
    def _ensure_engine(self, what: str) -> bool:
        """A view needs a loaded model (to redraw a picker choice, to generate, to
        translate). While training, the engine is there; a finished run's model is loaded
        again, view-only. Says what to do when neither is possible."""
        snap, rd = self.snapshot, self.bridge.run
        if rd is None:
            return False
        if self.bridge.engine_alive():
            return True
        if not (snap and snap.state == "finished" and snap.has_checkpoint):
            hint = ("press u to continue training it" if snap and snap.state in CONTINUABLE and snap.has_checkpoint
                    else "press s to train one")
            self.notify(f"No model is loaded to {what}: {hint}.", severity="warning")
            return False
        try:
            self.bridge.launch(rd)  # finished: it loads the checkpoint and serves the views
        except RunDirError as e:
            self.notify(str(e), severity="warning")
            return False
        kept = dict(self.params)
        self._follow_run(rd.read_config())
        self.params = kept
        self._show_params()
        self.notify(f"Loading the trained model to {what} …")
        return True

    @on(ControlRow.Changed)
    def control_changed(self, event: ControlRow.Changed) -> None:
        """A picker changed a view parameter: the engine redraws the views with it now.
        With no run, the choice waits for the next one."""
        self.params[event.key] = event.value
        self._show_params()
        if self.bridge.run is None:
            self.notify(f"{event.key} = {event.value} is kept for the next run: press s to start training.")
            return
        if self._ensure_engine("draw the new choice"):
            self.bridge.send("set", key=event.key, value=event.value)
            self.bridge.send("sample")

    def _ask(self, name: str, reply: str, settings: dict, what: str, **args) -> None:
        """Send a learner's request to the engine, after any settings that changed."""
        if self.bridge.run is None:
            self.params.update(settings)
            self.notify(f"There is no model yet to {what}: press s to start training (a few seconds "
                        "of training already gives an answer, if a bad one).", severity="warning")
            return
        if not self._ensure_engine(what):
            return
        for key, value in settings.items():
            if self.params.get(key) != value:
                self.params[key] = value
                self.bridge.send("set", key=key, value=value)
        self.query_one(HyperparamForm).set_values(self.params)
        self.bridge.send("interact", name=name, reply=reply, **args)

    @on(SamplerPanel.Generate)
    def generate(self, event: SamplerPanel.Generate) -> None:
        self._ask("generate", event.reply, event.settings, "generate text",
                  prompt=event.prompt, request=event.request)

    @on(PromptImagePanel.Generate)
    def prompt_image(self, event: PromptImagePanel.Generate) -> None:
        self._ask("generate", event.reply, event.settings, "draw images", prompt=event.prompt, **event.settings)

    @on(ActionImage.Run)
    def ask_for_image(self, event: ActionImage.Run) -> None:
        self._ask(event.action, event.reply, {}, "run it", **{k: self.params[k] for k in event.params})

    @on(TranslatePanel.Translate)
    def translate(self, event: TranslatePanel.Translate) -> None:
        settings = {"beam": event.beam} if "beam" in self.params else {}
        self._ask("translate", event.reply, settings, "translate", text=event.text,
                  request=event.request)

    # -- form, links, quiz --
    @on(HyperparamForm.Submitted)
    def form_submitted(self, event: HyperparamForm.Submitted) -> None:
        if not event.restart:
            for key, value in event.changed.items():
                self.bridge.send("set", key=key, value=value)
            self.params.update(event.changed)
            self.notify(f"Applied live: {', '.join(f'{k}={v}' for k, v in event.changed.items())}")
            return
        self.params = dict(event.values)
        active = self.snapshot is not None and self.snapshot.state in ACTIVE
        if active:
            self.bridge.send("stop")
        self._new_run(self.params)
        changed = ", ".join(f"{k}={v}" for k, v in event.changed.items())
        self.notify(f"{'Restarted' if active else 'Started'} with {changed}; earlier runs are kept in Runs.")
        self._show_tab(self.tabs[0].id)

    @on(Markdown.LinkClicked)
    def link_clicked(self, event: Markdown.LinkClicked) -> None:
        m = CODE_LINK.match(event.href)
        if not m:
            self.app.open_url(event.href)
            return
        self._show_tab("tab-code")
        if self.has_class("show-lesson"):
            self.remove_class("show-lesson")
        if not self.query_one(CodeView).show(m["path"], m["symbol"]):
            self.notify(f"No such code: {m['path']}", severity="warning")

    @on(QuizFinished)
    def quiz_finished(self, event: QuizFinished) -> None:
        record_quiz(event.lesson_id, event.score, event.total)


def pane_artifacts(pane) -> tuple[str, ...]:
    """The artifacts a pane shows (the translate panel: its answer and the examples). Panes
    that send requests also show the engine's error replies ("<artifact>.error")."""
    if isinstance(pane, TranslatePane):
        return (pane.artifact, f"{pane.artifact}.error", pane.examples)
    if isinstance(pane, (SamplerPane, PromptImagePane, ActionPane)):
        return (pane.artifact, f"{pane.artifact}.error")
    if isinstance(pane, TimelinePane):
        return (pane.meta, pane.artifact)
    return (pane.artifact,) if hasattr(pane, "artifact") else ()


def make_pane(pane) -> Widget:
    """The widget for one pane of a recipe's dashboard."""
    if isinstance(pane, Curves):
        return LossCurves(id=pane.id)
    if isinstance(pane, PointsPane):
        return LatentMap(id=pane.id)
    if isinstance(pane, ImagePane):
        view = ImageView(id=pane.id, placeholder=pane.placeholder, classes="side-pane" if pane.side else None)
        view.tile, view.tile_group, view.min_tile_scale = pane.tile, pane.group, pane.min_scale
        if pane.height:
            view.styles.height = pane.height
        return view
    if isinstance(pane, AttentionPane):
        return AttentionView(pane.title, pane.placeholder, id=pane.id)
    if isinstance(pane, PlotPane):
        return PlotView(pane.placeholder, id=pane.id)
    if isinstance(pane, TimelinePane):
        return TimelineView(pane.artifact, pane.meta, id=pane.id)
    if isinstance(pane, ActionPane):
        return ActionImage(pane.action, pane.artifact, pane.label, pane.params, id=pane.id)
    if isinstance(pane, TextPane):
        view = TextSample(pane.placeholder, id=pane.id)
        if pane.height:
            view.styles.height = pane.height
        return view
    raise TypeError(f"unknown dashboard pane {pane!r}")
