"""The one way the UI reaches the engine: start or attach to a run, send it commands, and
follow its run directory. Widgets never touch the engine; they get RunSnapshot messages.

Torch-free: it starts the engine as a separate process (engine.launch).
"""

from __future__ import annotations

import subprocess
import time
from typing import Callable

from engine.launch import start_engine
from engine.rundir import ARTIFACT_FILE, EventTail, History, RunDir
from engine.runs import run_state
from studio.messages import RunSnapshot

POLL_INTERVAL = 0.25  # seconds between reads of the event log (each read wakes the studio)
POST_INTERVAL = 1.0  # training's own progress (metrics, periodic views) reaches the UI once a second
URGENT = ("state", "param", "error")  # ...but what the learner caused or must see is posted at the next poll
MAX_POINTS = 400  # per curve in a snapshot
SERVE_S = 600.0  # an engine the studio starts answers the views this long after training, when idle


def downsample(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> tuple[list[int], list[float]]:
    """Keep at most ``limit`` points: means over equal buckets, so spikes still show a
    little, and the newest point exactly as reported (the legend shows its value)."""
    if len(points) > limit:
        size = len(points) / limit
        buckets = [points[int(i * size): int((i + 1) * size)] for i in range(limit)]
        points = [(b[-1][0], sum(v for _, v in b) / len(b)) for b in buckets if b][:-1] + [points[-1]]
    return [p[0] for p in points], [p[1] for p in points]


def confined(rd: RunDir, samples: dict[str, str]) -> dict[str, str]:
    """The artifacts whose files lie inside the run directory, by absolute path; a name that
    points elsewhere (``../``, a link out) is dropped, never read."""
    out = {}
    for name, rel in samples.items():
        path = rd.artifact_path(rel)
        if path is not None:
            out[name] = str(path)
    return out


def is_reply(path) -> bool:
    """Whether an artifact's file answers a learner's request (it carries -r<request>)."""
    m = ARTIFACT_FILE.match(path) if isinstance(path, str) else None
    return m is not None and m["request"] is not None


class Bridge:
    """Holds the run the lesson screen shows."""

    def __init__(self) -> None:
        self.run: RunDir | None = None
        self.proc: subprocess.Popen | None = None

    # -- starting --
    def launch(self, rd: RunDir) -> None:
        """Start an engine on ``rd`` (a new run, one to resume from its checkpoint, or a
        finished one whose model the views need again). It stays for the views after
        training until stopped or idle for SERVE_S seconds."""
        self.run = rd
        self.proc = start_engine(rd.path, serve=SERVE_S)

    def attach(self, rd: RunDir) -> None:
        rd.read_config()
        self.run = rd
        self.proc = None

    # -- commands --
    def send(self, cmd: str, **args) -> None:
        if self.run is not None:
            self.run.send(cmd, **args)

    def engine_alive(self) -> bool:
        if self.run is None:
            return False
        if self.proc is not None:
            return self.proc.poll() is None  # poll() also reaps our own finished child
        return self.run.engine_alive()

    # -- following (runs in a thread worker) --
    def follow(self, post: Callable[[RunSnapshot], None], cancelled: Callable[[], bool]) -> None:
        rd = self.run
        if rd is None:
            return
        cfg = rd.read_config()
        total = int(cfg["params"].get("steps", 0))
        tail = EventTail(rd.events_path)
        hist = History()
        version, sample_versions = 0, {}
        last_post, last_alive, dirty, urgent = 0.0, None, True, False
        unposted_replies: set[str] = set()  # names whose newest artifact answers a request, not posted yet

        thinned: dict[str, tuple[int, tuple[list[int], list[float]]]] = {}  # name -> (points, downsampled)

        def series() -> dict[str, tuple[list[int], list[float]]]:
            """Each metric downsampled, again only when it gained points since the last post."""
            for name, points in hist.metrics.items():
                if name not in thinned or thinned[name][0] != len(points):
                    thinned[name] = (len(points), downsample(points))
            return {name: thinned[name][1] for name in hist.metrics}

        def snapshot(alive: bool) -> RunSnapshot:
            return RunSnapshot(
                run_dir=str(rd.path), state=run_state(rd, hist, alive), device=hist.device, step=hist.step,
                total_steps=total, status=dict(hist.status),
                series=series(),
                samples=confined(rd, hist.samples), captions=dict(hist.captions),
                errors=list(hist.errors), logs=hist.logs[-5:], last_log_time=hist.last_log_time, params=dict(hist.params),
                has_checkpoint=rd.checkpoint_path.exists(), version=version, sample_versions=dict(sample_versions),
                sample_steps=dict(hist.sample_steps),
            )

        while not cancelled():
            for ev in tail.read_new():
                if ev.type == "sample":
                    name = ev.payload.get("name")
                    if name in unposted_replies and not is_reply(ev.payload.get("path")):
                        # A periodic view would replace the learner's answer before the
                        # studio saw it (a snapshot keeps the newest per name): post it first.
                        post(snapshot(self.engine_alive()))
                        last_post, unposted_replies = time.monotonic(), set()
                    if is_reply(ev.payload.get("path")):
                        unposted_replies.add(name)
                        urgent = True
                hist.apply(ev)
                version += 1
                dirty = True
                urgent = urgent or ev.type in URGENT
                if ev.type == "sample":
                    sample_versions[ev.payload["name"]] = version
            alive = self.engine_alive()
            if alive != last_alive:
                dirty, urgent, last_alive = True, True, alive
            now = time.monotonic()
            if dirty and (urgent or now - last_post >= POST_INTERVAL):
                post(snapshot(alive))
                last_post, dirty, urgent, unposted_replies = now, False, False, set()
            time.sleep(POLL_INTERVAL)
