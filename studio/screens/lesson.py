"""The lesson screen: the lesson text beside a dashboard of live views, with run controls.

It does layout, key bindings and routing only: the views come from the recipe's dashboard
declaration through the view table (studio/views.py), runs are started and asked through
:class:`studio.run_control.RunControl`, and it names no family, parameter or widget class.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
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

from engine.panes import MODEL_TAB
from engine.registry import dashboard, get_config_class
from engine.rundir import TERMINAL_STATES, RunDir, RunDirError
from engine.runs import ACTIVE, CONTINUABLE, RunError
from engine.schema import specs
from studio.glossary import term_links
from studio.lessons import CODE_LINK, Lesson, get_lesson, load_lessons, next_lesson
from studio.messages import AskEngine, OpenCode, PickSetting, QuizFinished, RunSnapshot
from studio.progress import load_progress, mark_opened, mark_trained, record_quiz, was_trained
from studio.run_control import RunControl, last_run_of
from studio.screens.code_links import CodeLinks, code_links
from studio.screens.next_lesson import NextLesson
from studio.screens.term import choose_term, show_term
from studio.screens.zoom import ZoomItem, ZoomScreen
from studio.views import build_view
from studio.widgets.code_view import CodeView
from studio.widgets.hyperparams import HyperparamForm
from studio.widgets.quiz import QuizPanel
from studio.widgets.status_line import StatusLine
from studio.widgets.tabs import FittedTabs
from studio.widgets.view import ArtifactUpdate, is_field

LOG_FRESH_S = 15.0  # seconds an engine log line stays on screen
NARROW = 110  # columns below which the lesson text and the dashboard take turns
FULL_FOOTER = 170  # columns below which the footer lists only the keys that work now, compactly
# ... and leaves these out, so that the others fit on its line (the lesson text names them:
# "n to step", "press k to choose", "t lists the glossary terms"); they still work.
SECONDARY_KEYS = ("n", "k", "t", "r")


class LessonScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Catalog", tooltip="Back to the catalog (training keeps going)"),  # first: never cut off
        Binding("s", "start", "Start", tooltip="Start a new training run with the Settings values"),
        Binding("p", "pause", "Pause/resume", tooltip="Pause or resume training"),
        Binding("n", "step", "Step", tooltip="Run a single training step (pauses first)"),
        Binding("x", "stop", "Stop", tooltip="Stop training and save a checkpoint"),
        Binding("l", "toggle_lesson", "Lesson", tooltip="Show or hide the lesson text"),
        Binding("e", "export", "Export PNG", tooltip="Save the image this tab shows (else the sample grid) as a PNG in the current folder"),
        Binding("f", "zoom", "Full screen", tooltip="Show this tab's images full screen, every tile, as large as fits"),
        Binding("k", "code_links", "Code links", tooltip="Jump to the code the lesson's text links to"),
        Binding("t", "terms", "Terms", tooltip="The glossary terms the lesson marks, with their definitions"),
        Binding("u", "continue_run", "Continue", tooltip="Continue this stopped run from its last checkpoint"),
        Binding("r", "reset", "Reset", tooltip="Start over with fresh weights (the old run is kept)"),
        Binding("c", "checkpoint", "Checkpoint", tooltip="Save a checkpoint now", show=False),
        Binding("g", "sample_now", "Sample", tooltip="Refresh the samples now", show=False),
        Binding("R", "app.show_runs", "Runs", show=False),
        *[Binding(str(i), f"tab({i})", f"Tab {i}", show=False) for i in range(1, 10)],
    ]

    def __init__(self, lesson_id: str, attach: str | None = None, resume: bool = False) -> None:
        super().__init__()
        self.lesson: Lesson = get_lesson(lesson_id)
        self.spec_list = specs(get_config_class(self.lesson.recipe))
        self.tabs = dashboard(self.lesson.recipe)  # the recipe's own tabs, numbered first
        self.panes = [pane for tab in (*self.tabs, MODEL_TAB) for pane in tab.panes]
        # What e exports: the first image the dashboard shows (the sample grid, the field).
        self.export_artifact = next((p.export for p in self.panes if p.export), None)
        self.control = RunControl(self.lesson.recipe, self.lesson.id, {s.name: s.default for s in self.spec_list})
        self.views: dict[str, Widget] = {}  # pane id -> its widget
        self.links = code_links(self.lesson.body)  # (label, href) of the text's code links
        self._trained = was_trained(self.lesson.id)  # a run of it reached its bar before
        self.snapshot: RunSnapshot | None = None
        self._live_params_shown = True  # (set False when a run is followed)
        self._attach_to = attach
        self._resume = resume  # continue the attached run from its checkpoint on mount
        self._log_shown = ""  # what the log line and banner show now, to skip no-op updates
        self._banner_shown = ""

    @property
    def bridge(self):
        return self.control.bridge

    @property
    def params(self) -> dict:
        """The values the next run starts with (the shown run's, while one is shown)."""
        return self.control.params

    @params.setter
    def params(self, values: dict) -> None:
        self.control.params = dict(values)

    # -- layout --
    def compose(self) -> ComposeResult:
        yield Static(self._breadcrumb(200), id="title-bar")
        by_name = {s.name: s for s in self.spec_list}
        with Horizontal(id="lesson-body"):
            with VerticalScroll(id="lesson-pane"):
                if self.links:
                    terms = " t lists the glossary terms." if term_links(self.lesson.body) else ""
                    yield Static(Text("Links to code open it in the Code tab: click one, or press k to choose."
                                      + terms, style="dim italic"), id="lesson-hint")
                yield Markdown(self.lesson.body, id="lesson-text", open_links=False)
            with Vertical(id="dashboard"):
                yield Static("", id="banner")
                with FittedTabs(id="tabs"):
                    for n, tab in enumerate(self.tabs, start=1):
                        with TabPane(f"{n} {tab.title}", id=tab.id):
                            with (Vertical if tab.vertical else Horizontal)(classes="views"):
                                for pane in tab.panes:
                                    self.views[pane.id] = build_view(pane, by_name, self.params)
                                    yield self.views[pane.id]
                    n = len(self.tabs)
                    with TabPane(f"{n + 1} Settings", id="tab-settings"):
                        yield HyperparamForm(self.spec_list, self.params, id="form")
                    with TabPane(f"{n + 2} Code", id="tab-code"):
                        yield CodeView(self.lesson.code, id="code")
                    with TabPane(f"{n + 3} Quiz", id="tab-quiz"):
                        yield QuizPanel(self.lesson.id, self.lesson.quiz, id="quiz")
                    with TabPane(f"{n + 4} {MODEL_TAB.title}", id=MODEL_TAB.id):  # every lesson's: the network
                        for pane in MODEL_TAB.panes:
                            self.views[pane.id] = build_view(pane, by_name, self.params)
                            yield self.views[pane.id]
                yield Static("", id="log-line")
                yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        mark_opened(self.lesson.id)
        self.query_one(StatusLine).update_from(None)
        if not self._attach_to:  # reopened: show its newest run (training, finished or stopped), not an empty lesson
            last = last_run_of(self.lesson.id)
            if last is not None:
                rd, state = last
                self._attach_to = str(rd.path)
                self.notify(f"Your run {rd.name} is still training: here it is. s starts a new one." if state in ACTIVE
                            else f"Your last run {rd.name} ({state}) is shown. s starts a new one.")
        if self._attach_to:
            rd = RunDir(self._attach_to)
            self.control.attach(rd, resume=self._resume)
            self._follow_run(rd.read_config())
        self._apply_width(self.size.width)
        self.call_after_refresh(self._focus_text)

    def _focus_text(self) -> None:
        """A lesson opens with its text taking the keys when the text is on screen, so ↓ and
        PgDn read on at once (the studio's letter keys still work: the text binds none of
        them; a tab's number gives the keys to that tab)."""
        pane = self.query_one("#lesson-pane")
        if pane.region.width and pane.region.height:
            pane.focus()

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _breadcrumb(self, width: int) -> Text:
        """GenStudio › family › title; the family goes first when the line is too short."""
        parts = [("GenStudio", "bold"), "  ›  ", self.lesson.family, "  ›  ", (self.lesson.title, "bold")]
        text = Text.assemble(*parts)
        if text.cell_len > width - 2:
            text = Text.assemble(*parts[:2], parts[4])
        text.no_wrap, text.overflow = True, "ellipsis"
        return text

    def _apply_width(self, width: int) -> None:
        self.query_one("#title-bar", Static).update(self._breadcrumb(width))
        narrow = width < NARROW
        if narrow != self.has_class("narrow"):
            self.set_class(narrow, "narrow")
            # Narrow: read first (the lesson text fills the screen until a run starts).
            self.set_class(narrow and self.bridge.run is None, "show-lesson")
        short = width < FULL_FOOTER
        if short != self.has_class("short-footer"):
            self.set_class(short, "short-footer")
            footer = self.query_one(Footer)
            footer.compact, footer.show_command_palette = short, not short
            for key in SECONDARY_KEYS:  # still bound, only not listed
                bindings = self._bindings.key_to_bindings
                bindings[key] = [replace(b, show=not short) for b in bindings.get(key, [])]
            self.refresh_bindings()

    # -- following a run --
    def _follow_run(self, cfg: dict) -> None:
        self.params = dict(cfg["params"])
        self._show_params()
        self.snapshot = None
        self._live_params_shown = False  # the run's own live changes come with its first snapshot
        self.follow()

    def _show_params(self) -> None:
        self.query_one(HyperparamForm).set_values(self.params)
        for view in self.views.values():
            view.set_values(self.params)

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
        if not self._live_params_shown:
            # Values changed live in an earlier visit (a pick, an lr) are what the run has
            # now, not the values it was created with. Once: later changes are the learner's.
            self._live_params_shown = True
            if any(self.params.get(k) != v for k, v in snap.params.items()):
                self.params = {**self.params, **snap.params}
                self._show_params()
        self.query_one(StatusLine).update_from(snap)
        self.query_one(HyperparamForm).running = snap.state in ("running", "paused")
        # Only what changed is touched: every update costs the training process CPU time.
        old_versions = old.sample_versions if old and old.run_dir == snap.run_dir else {}
        for pane in self.panes:
            view = self.views[pane.id]
            view.follow(snap)
            for name in pane.artifacts:
                if name not in snap.samples or snap.sample_versions.get(name) == old_versions.get(name):
                    continue
                view.load(ArtifactUpdate(name, snap.samples[name], snap.captions.get(name, ""),
                                         snap.sample_steps.get(name, snap.step)))
        self._show_banner(snap)
        self._check_bar(snap)
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
            message = Text.assemble(("✗ Training stopped: ", "bold"), str(err.get("message", "")), "\n",
                                    ("What to try: ", "bold"), str(err.get("hint", "")))
            if snap.has_checkpoint and snap.step < snap.total_steps:
                message.append(" Press u to continue from the last checkpoint.")
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
        shows the key as active nor runs the action. Below FULL_FOOTER columns such keys are left
        out of the footer (False), so that the ones that work fit on its one line."""
        if self._allowed(action):
            return True
        return False if self.has_class("short-footer") else None

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
            return self._export_target() is not None
        if action == "zoom":
            return bool(self._zoom_items())
        if action == "code_links":
            return bool(self.links)
        return True

    def _new_run(self, params: dict) -> None:
        try:
            rd = self.control.start(params)
        except RunError as e:
            self.notify(str(e), severity="error", timeout=8)
            return
        self._follow_run(rd.read_config())
        if self.has_class("show-lesson"):  # narrow: the text gives way to the dashboard, which takes the keys
            self.remove_class("show-lesson")
            self.set_focus(None)
            self._focus_tab(self.query_one(TabbedContent).active)
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
        try:
            rd = self.control.continue_run()
        except RunDirError as e:
            self.notify(str(e), severity="warning")
            return
        if rd is None:
            return
        self._follow_run(rd.read_config())
        self.notify(f"Continuing {rd.name} from step {self.snapshot.step if self.snapshot else 0:,}.")

    def action_checkpoint(self) -> None:
        self.bridge.send("checkpoint")
        self.notify("Checkpoint requested.")

    def action_sample_now(self) -> None:
        self.bridge.send("sample")

    def _export_target(self) -> str | None:
        """The image `e` saves: the first of the tab being looked at (the Picker's pairs on
        the Picker tab), else the lesson's sample grid."""
        snap = self.snapshot
        if snap is None:
            return None
        active = self.query_one(TabbedContent).active
        shown = [p.export for t in self.tabs if t.id == active for p in t.panes if p.export in snap.samples]
        return shown[0] if shown else (self.export_artifact if self.export_artifact in snap.samples else None)

    def action_export(self) -> None:
        name = self._export_target()
        if name is None:
            return
        src = Path(self.snapshot.samples[name])
        step = self.snapshot.sample_steps.get(name, self.snapshot.step)
        dest = Path.cwd() / f"genstudio-{self.bridge.run.name}-{name}-{step:08d}.png"
        try:
            shutil.copyfile(src, dest)
        except OSError as e:
            self.notify(f"Could not export: {e}", severity="error")
            return
        self.notify(f"Saved {name} (step {step:,}) to {dest}", timeout=8)

    def _zoom_items(self) -> list[ZoomItem]:
        """The images the lesson shows now, this tab's first."""
        snap = self.snapshot
        if snap is None:
            return []
        active = self.query_one(TabbedContent).active
        tabs = sorted(self.tabs, key=lambda t: t.id != active)
        items, seen = [], set()
        for tab in tabs:
            for pane in tab.panes:
                name = pane.export
                if name and name in snap.samples and name not in seen:
                    seen.add(name)
                    step = snap.sample_steps.get(name, snap.step)
                    items.append(ZoomItem(f"{tab.title} · {name}", snap.samples[name],
                                          f"{snap.captions.get(name, '')} · step {step}",
                                          getattr(pane, "tile", None), getattr(pane, "group", 1)))
        return items

    def action_zoom(self) -> None:
        items = self._zoom_items()
        if items:
            self.app.push_screen(ZoomScreen(items))

    def action_code_links(self) -> None:
        def chosen(href: str | None) -> None:
            if href:
                self._open_code(href)

        self.app.push_screen(CodeLinks(self.links), chosen)

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
        self._focus_tab(event.pane.id)

    def _focus_tab(self, tab_id: str) -> None:
        if tab_id == "tab-quiz":  # ↑/↓ choose an answer at once
            self.query_one(QuizPanel).focus_input()
            return
        tab = next((t for t in (*self.tabs, MODEL_TAB) if t.id == tab_id), None)
        for pane in sorted(tab.panes if tab else (), key=lambda p: self.views[p.id].focus_last):
            if self.views[pane.id].focus_input():
                break

    def action_toggle_lesson(self) -> None:
        if self.has_class("narrow"):
            self.toggle_class("show-lesson")
            if self.has_class("show-lesson"):
                self.query_one("#lesson-pane").focus()  # ↓ and PgDn read the text at once
        else:
            self.toggle_class("hide-lesson")

    def _training(self) -> bool:
        """A run is training, or was just started and has not said so yet."""
        if self.snapshot is None or self.snapshot.state == "new":
            return self.bridge.run is not None and self.bridge.engine_alive()
        return self.snapshot.state in ACTIVE

    def action_back(self) -> None:
        if is_field(self.focused):  # one rule everywhere: Esc leaves a field first
            self.set_focus(None)
            return
        if self._training():
            self.app.notify("Training keeps going in the background; Runs (R) reattaches to it.")
        self.workers.cancel_group(self, "follow")
        self.app.pop_screen()

    def on_unmount(self) -> None:
        """Leaving the lesson (or quitting): a finished run's engine, kept for the views,
        is no longer needed. Training in progress keeps going."""
        if self.snapshot is not None and self.snapshot.state in TERMINAL_STATES and self.bridge.engine_alive():
            self.bridge.send("stop")  # (a run still "new" or "starting" is training: left alone)

    # -- requests from the views --
    def _engine_for(self, what: str, asker=None) -> bool:
        """Whether a model is there to answer; a finished run's model is loaded again.
        When none is, the asking view is told why (it stops saying "working …")."""
        outcome = self.control.engine_for(what, self.snapshot)
        if not outcome.ok and hasattr(asker, "refused"):
            asker.refused(outcome.message)
        if outcome.relaunched:
            kept = dict(self.params)
            self._follow_run(self.bridge.run.read_config())
            self.params = kept
            self._show_params()
        if outcome.message:
            self.notify(outcome.message, severity=outcome.severity)
        return outcome.ok

    @on(PickSetting)
    def setting_picked(self, event: PickSetting) -> None:
        """A picker changed a view parameter: the engine redraws the views with it now.
        With no run, the choice waits for the next one."""
        self.params[event.key] = event.value
        self._show_params()
        if self.bridge.run is None:
            self.notify(f"{event.key} = {event.value} is kept for the next run: press s to start training.")
            return
        if self._engine_for("draw the new choice"):
            self.bridge.send("set", key=event.key, value=event.value)
            self.bridge.send("sample")

    @on(AskEngine)
    def ask_engine(self, event: AskEngine) -> None:
        """Send a learner's request to the engine, after any settings that changed."""
        if self.bridge.run is None:
            self.params.update(event.settings)
        if not self._engine_for(event.what, event.view):
            return
        self.control.send_settings(event.settings)
        self.query_one(HyperparamForm).set_values(self.params)
        self.control.ask(event.action, event.reply, event.args)

    # -- form, links, quiz --
    @on(HyperparamForm.Submitted)
    def form_submitted(self, event: HyperparamForm.Submitted) -> None:
        if not event.restart:
            for key, value in event.changed.items():
                self.bridge.send("set", key=key, value=value)
            self.params.update(event.changed)
            self.notify(f"Applied live: {', '.join(f'{k}={v}' for k, v in event.changed.items())}")
            return
        active = self.snapshot is not None and self.snapshot.state in ACTIVE
        if active:
            self.bridge.send("stop")
        self._new_run(dict(event.values))
        changed = ", ".join(f"{k}={v}" for k, v in event.changed.items())
        # A value changed live earlier carries over into the new run: say so.
        defaults = {s.name: s.default for s in self.spec_list}
        kept = ", ".join(f"{s.name}={event.values[s.name]}" for s in self.spec_list if s.live
                         and s.name not in event.changed and event.values.get(s.name) != defaults[s.name])
        kept = f" (keeping {kept}, changed live)" if kept else ""
        live = {s.name for s in self.spec_list if s.live}
        why = ("Training had ended, so live settings start a new run (they apply live while one trains). "
               if not active and self.snapshot is not None and set(event.changed) <= live else "")
        self.notify(f"{why}{'Restarted' if active else 'Started'} with {changed}{kept}; earlier runs are kept in Runs.")
        self._show_tab(self.tabs[0].id)

    @on(OpenCode)
    def open_code(self, event: OpenCode) -> None:
        if CODE_LINK.match(event.href):
            self._open_code(event.href)

    def action_terms(self) -> None:
        if not choose_term(self, self.lesson.body):
            self.notify("This lesson marks no glossary terms.")

    @on(Markdown.LinkClicked)
    def link_clicked(self, event: Markdown.LinkClicked) -> None:
        if show_term(self, event.href):  # a term: its definition in place
            return
        if not CODE_LINK.match(event.href):
            self.app.open_url(event.href)
            return
        self._open_code(event.href)

    def _open_code(self, href: str) -> None:
        m = CODE_LINK.match(href)
        self._show_tab("tab-code")
        if self.has_class("show-lesson"):
            self.remove_class("show-lesson")
        if not self.query_one(CodeView).show(m["path"], m["symbol"]):
            self.notify(f"No such code: {m['path']}", severity="warning")

    @on(QuizFinished)
    def quiz_finished(self, event: QuizFinished) -> None:
        record_quiz(event.lesson_id, event.score, event.total)
        if event.score == event.total:  # passed: offer the next lesson of the path not passed yet
            progress = load_progress()
            upcoming = next_lesson(load_lessons(), progress, after=self.lesson.id)
            trained = self.lesson.bar is None or was_trained(self.lesson.id, progress)

            def chosen(go: bool | None) -> None:
                if go and upcoming is not None:
                    self.app.pop_screen()
                    self.app.open_lesson(upcoming.id)

            self.app.push_screen(NextLesson(self.lesson, upcoming, trained), chosen)

    def _check_bar(self, snap: RunSnapshot) -> None:
        """Record the lesson as trained the first time a run of it reaches its bar."""
        bar = self.lesson.bar
        if bar is None or self._trained:
            return
        latest = {name: ys[-1] for name, (xs, ys) in snap.series.items() if ys}
        if bar.reached(latest, snap.step):
            self._trained = True
            mark_trained(self.lesson.id, bar.value(latest), Path(snap.run_dir).name)
            self.notify(f"Trained to this lesson's bar ({bar.describe()}): the catalog marks it. The quiz is next.",
                        timeout=8)
