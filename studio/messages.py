"""App-wide messages. Small dataclasses of plain values: no tensors, nothing per step."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message


@dataclass
class RunSnapshot(Message):
    """What a run looks like now, folded from its event log by the bridge's thread worker.
    Curves are downsampled, so the message stays small however long the run is; a newer
    snapshot replaces one still waiting in the queue."""

    run_dir: str
    state: str  # new, starting, running, paused, finished, stopped, failed, interrupted
    device: str
    step: int
    total_steps: int
    status: dict[str, float]
    series: dict[str, tuple[list[int], list[float]]]
    samples: dict[str, str]  # name -> absolute path of the newest artifact
    captions: dict[str, str]  # name -> its caption
    errors: list[dict]
    logs: list[str]  # the last few log lines
    last_log_time: float  # unix time of the newest log line
    params: dict  # live changes that took effect
    has_checkpoint: bool
    version: int = 0  # increases with every event seen; widgets skip redraws when unchanged
    sample_versions: dict[str, int] = field(default_factory=dict)
    sample_steps: dict[str, int] = field(default_factory=dict)  # name -> the training step that drew it

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunSnapshot) and message.run_dir == self.run_dir


@dataclass
class AskEngine(Message):
    """A view asks the run's engine for something only a loaded model can answer (generate
    from this prompt, translate this sentence, compare the samplers). The lesson screen
    sets ``settings`` on the engine first (live parameters that changed), then sends the
    request; the answers come back as artifacts named ``reply``."""

    action: str  # the request's name (the recipe's interact name)
    reply: str  # the artifact name the answers are written as
    args: dict = field(default_factory=dict)  # the request's arguments
    settings: dict = field(default_factory=dict)  # live parameters to set before asking
    what: str = "answer"  # what the model is needed for, in words ("generate text")

    @property
    def view(self):
        """The view that asked (told through ``refused`` when no model can answer)."""
        return self._sender


@dataclass
class PickSetting(Message):
    """A view's picker chose a value for a live parameter: the engine redraws the views with
    it now (with no run, it waits for the next one)."""

    key: str
    value: object


@dataclass
class QuizFinished(Message):
    lesson_id: str
    score: int
    total: int


@dataclass
class OpenCode(Message):
    """A view asks the lesson screen to show a piece of code in the Code tab
    (``href``: ``code:PATH#SYMBOL``, as the lesson text links it)."""

    href: str
