"""The runner: one training run in its own process, driven by its run directory.

It owns everything a family does not: the loop, pause/resume/step/stop, live
hyperparameter changes, metric emission at a bounded rate, samples every few seconds and
on demand, checkpoints, resume, and turning NaNs, OOMs and crashes into events.
"""

from __future__ import annotations

import errno
import math
import os
import signal
import time
import traceback
from pathlib import Path

import torch

from engine.checkpoint import CheckpointError, load_checkpoint, restore, save_checkpoint, set_rng_state
from engine.registry import get_config_class, get_recipe
from engine.schema import ConfigError, parse_value, specs
from engine.device import TooBigForMemory, configure, describe, resolve_device
from engine.imaging import save_png
from engine.model_summary import models_of, recording, summary_rows
from engine.recipes import build_recipe
from engine.recipes.base import Artifact, RunContext
from engine.panes import error_reply
from engine.rundir import (JsonlTail, RunDir, acquire_lock, artifact_file, atomic_write_bytes, atomic_write_json,
                           remove_stale_temps)

METRICS_INTERVAL = 0.1  # seconds between metric events: at most ~10 a second
COMMAND_INTERVAL = 0.02  # seconds between reads of the command log while training
SAMPLE_BUDGET = 0.08  # views may take at most this share of wall time (the interval grows)
CHECKPOINT_INTERVAL = 30.0  # seconds between periodic checkpoints
SERVE_POLL = 0.05  # seconds between reads of the command log while serving views
SYNC_EVERY = 8  # under DDP: steps between command exchanges (rank 0 reads, every rank applies)


class NonFiniteLoss(RuntimeError):
    pass


class DiskFull(RuntimeError):
    pass


def out_of_memory(e: BaseException) -> bool:
    """A CPU allocation that failed (the GPU's has its own type, torch.OutOfMemoryError)."""
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and (
        "can't allocate memory" in str(e) or "DefaultCPUAllocator" in str(e)))


class Runner:
    def __init__(self, run_dir: str | Path, commands_from: int = 0, serve: float = 0.0):
        """``commands_from``: byte offset in commands.jsonl where this process's commands
        start; the launcher passes the file's size at launch, so a resumed run does not
        replay the commands of the process before it.

        ``serve``: once training has finished, keep the model loaded and answer ``set`` and
        ``sample`` commands (the attribute picker, say) until a ``stop`` or this many
        seconds without a command. 0 (headless runs) exits at once."""
        self.rd = RunDir(run_dir)
        self.cfg = self.rd.read_config()
        self.recipe_name = self.cfg["recipe"]
        self.params = dict(self.cfg["params"])
        self.total_steps = int(self.params.get("steps", 1000))
        self.step = 0
        self.elapsed = 0.0  # seconds spent training, pauses excluded; survives resume
        self.paused = False
        self.stop_requested = False
        self.pending_steps = 0  # single steps requested while paused
        self.commands = JsonlTail(self.rd.commands_path, offset=commands_from)
        self._acc: dict[str, torch.Tensor] = {}  # metrics summed since the last report (rank 0's view)
        self._acc_n = 0
        self._local: dict[str, torch.Tensor] = {}  # under DDP: this process's sums since the last exchange
        self._local_n = 0
        self._window = (time.monotonic(), 0)  # (time, step) at the last status
        self._rate = 0.0  # steps a second over the last window that had steps
        fault = os.environ.get("GENSTUDIO_FAULT_NAN_AT")
        self.nan_at = int(fault) if fault else None
        self.serve = serve
        self.saved_step: int | None = None  # the step of the newest checkpoint on disk
        self.steps_here = 0  # steps trained by this process (0 when it only serves views)
        # Under torchrun: this process's rank among world_size processes. Rank 0 reads the
        # commands, writes the events, views and checkpoints; every rank trains.
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))

    # -- events --
    def emit(self, type: str, payload: dict | None = None) -> None:
        if self.rank == 0:
            self.rd.emit(type, self.step, payload)
        elif type == "error":  # other ranks have no event log; their output goes to engine.log
            print(f"rank {self.rank}: {payload}", flush=True)

    def log(self, message: str) -> None:
        self.emit("log", {"message": message})

    # -- the whole run --
    def run(self) -> int:
        lock = None
        if self.rank == 0:
            # One engine per run: the lock is taken atomically and held until this process
            # ends (the kernel lets go of it even after a kill -9).
            lock = acquire_lock(self.rd.lock_path)
            if lock is None:
                print(f"genstudio engine: {self.rd.name} is already training in another process; "
                      "this one exits without touching it", flush=True)
                return 2
            for folder in (self.rd.path, self.rd.samples_dir, self.rd.checkpoint_path.parent):
                for stale in remove_stale_temps(folder):
                    print(f"removed {stale.name}, left by a writer that died", flush=True)
            atomic_write_bytes(self.rd.pid_path, str(os.getpid()).encode())
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            return self._run()
        finally:
            if self.world_size > 1 and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
            if self.rank == 0:
                try:
                    self.rd.pid_path.unlink()
                except OSError:
                    pass
            if lock is not None:
                os.close(lock)

    def _on_signal(self, signum, frame) -> None:
        # Under DDP torchrun signals every rank; rank 0 passes the stop on at the next
        # command exchange, so all ranks stop at the same step.
        if self.rank == 0:
            self.stop_requested = True

    def _run(self) -> int:
        self.emit("state", {"state": "starting"})
        try:
            self.device = resolve_device(self.cfg.get("device", "auto"))
        except RuntimeError as e:
            return self._fail("config", str(e), "choose --device auto, or a device this machine has")
        if self.world_size > 1:
            if not get_recipe(self.recipe_name).distributed:
                return self._fail("config", f"{self.recipe_name} does not train on several processes",
                                  "run it without --nproc")
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.log(f"DDP: {self.world_size} processes ({torch.distributed.get_backend()}); rank 0 reports")
        configure(self.device)
        seed = int(self.params.get("seed", 0))
        # Under DDP each process draws its own noise (rank 0's is the single-process stream);
        # the models still start equal: DDP copies rank 0's weights to the others.
        torch.manual_seed(seed + 7919 * self.rank)
        ctx = RunContext(device=self.device, log=self.log, rank=self.rank, world_size=self.world_size)
        try:
            self.recipe = build_recipe(self.recipe_name, self.params, ctx)
        except ConfigError as e:
            return self._fail("config", str(e), "fix the hyperparameter and start again")
        except TooBigForMemory as e:
            return self._fail("oom", str(e), "choose a smaller model (fewer layers, a smaller width) or a device "
                              "with more memory")
        except (ValueError, OSError) as e:
            paths = [s.name for s in specs(get_config_class(self.recipe_name)) if s.path]
            where = " and ".join(paths) if paths else "the data settings"
            return self._fail("data", str(e), f"check {where}, then start a new run")
        except Exception as e:  # a crash while building: still an event, never a silent death
            traceback.print_exc()
            if out_of_memory(e):
                return self._fail("oom", f"the computer ran out of memory while building the model ({e})",
                                  "lower batch_size or the model's size and restart")
            return self._fail("crash", f"{type(e).__name__}: {e}", f"see {self.rd.log_path} for the traceback")
        self.batch_size = self.recipe.batch_size
        if self.device.type == "cpu" and self.recipe.cpu_threads:
            torch.set_num_threads(self.recipe.cpu_threads)

        resumed_from = None
        if self.rd.checkpoint_path.exists():
            try:
                self._load(self.rd.checkpoint_path)
            except CheckpointError as e:
                return self._fail("checkpoint", str(e), "start a new run; the damaged file was left untouched")
            resumed_from = self.saved_step = self.step
            self.log(f"resumed from the checkpoint at step {self.step:,}")
        if self.world_size > 1:
            self._wrap_for_ddp()
        state = {"state": "running", "device": describe(self.device)}
        if resumed_from is not None:
            state["resumed_from"] = resumed_from
        self.emit("state", state)

        try:
            return self._loop()
        except NonFiniteLoss as e:
            saved = (" The last checkpoint was saved before the loss went bad; the run can continue from it."
                     if self.rd.checkpoint_path.exists() else "")
            return self._fail("nan", str(e), self.recipe.nan_hint + saved)
        except torch.OutOfMemoryError:
            return self._fail("oom", "the device ran out of memory", "lower batch_size or width and restart")
        except DiskFull as e:
            return self._fail("disk", str(e), "free some space on that disk (df -h shows it); then the run can "
                              "continue from its last checkpoint")
        except Exception as e:  # a crash in a recipe must still reach the UI as an event
            traceback.print_exc()
            if out_of_memory(e):
                return self._fail("oom", f"the computer ran out of memory ({e})",
                                  "lower batch_size or the model's size and restart")
            return self._fail("crash", f"{type(e).__name__}: {e}", f"see {self.rd.log_path} for the traceback")

    def _loop(self) -> int:
        sample_interval = base_interval = self.recipe.view_interval
        last_sample = last_ckpt = time.monotonic()
        self._views()  # the untrained model's samples, so the learner sees where it starts
        tick = time.monotonic()
        last_poll = 0.0
        while self.step < self.total_steps:
            if self.world_size > 1:
                if self.paused or self.step % SYNC_EVERY == 0:
                    self._sync_commands()  # every rank at the same steps, so they stay in step
                    self._reduce_metrics()
            elif self.paused or tick - last_poll >= COMMAND_INTERVAL:
                self._poll_commands()  # a file read: at a bounded rate, not every step
                last_poll = tick
            if self.stop_requested:
                self._reduce_metrics()
                self._flush_metrics()
                self._checkpoint()
                self.emit("state", {"state": "stopped"})
                return 0
            if self.paused and self.pending_steps == 0:
                if self._acc_n:
                    self._flush_metrics()
                time.sleep(0.05)
                tick = time.monotonic()
                self._window = (tick, self.step)
                continue
            metrics = self.recipe.train_step() if self.steps_here else self._first_step()
            self.step += 1
            self.steps_here += 1
            inject_nan_for_tests(self.nan_at, self.step, metrics)
            if self.world_size > 1:  # summed across the processes at the next exchange
                self._add(self._local, metrics)
                self._local_n += 1
            else:
                self._add(self._acc, metrics)
                self._acc_n += 1
            now = time.monotonic()
            self.elapsed += now - tick
            tick = now
            if self.pending_steps:
                self.pending_steps -= 1
                self._flush_metrics()
                self._views()
                continue
            if now - self._window[0] >= METRICS_INTERVAL:
                self._flush_metrics()
            if self.rank > 0:
                continue  # views and checkpoints are rank 0's
            if now - last_sample >= sample_interval:
                t0 = time.monotonic()
                self._views()
                cost = time.monotonic() - t0
                # Keep the views' share of time bounded: slow views are refreshed less often.
                sample_interval = max(base_interval, cost / SAMPLE_BUDGET)
                last_sample = time.monotonic()
            if now - last_ckpt >= CHECKPOINT_INTERVAL:
                self._checkpoint()
                last_ckpt = time.monotonic()
        self._reduce_metrics()
        self._flush_metrics()
        if self.world_size > 1:
            self._check_ranks_agree()
        self._views()
        if self.steps_here or not self.rd.checkpoint_path.exists():
            self._checkpoint()
        self.emit("state", {"state": "finished"})
        if self.serve > 0 and self.world_size == 1:
            self._serve_views()
        return 0

    def _wrap_for_ddp(self) -> None:
        """Wrap the recipe's training modules in DistributedDataParallel: constructing one
        copies rank 0's weights to every process, and its backward() averages gradients."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        for name in self.recipe.ddp_modules:
            self.recipe.wrapped[name] = DistributedDataParallel(getattr(self.recipe, name), device_ids=ids)

    def _check_ranks_agree(self) -> None:
        """DDP keeps every copy of the model identical; check it, and say so in the log."""
        params = [p.detach().float() for name in self.recipe.ddp_modules
                  for p in getattr(self.recipe, name).parameters()]
        mine = torch.stack([torch.stack([p.sum(), p.square().sum()]) for p in params]).flatten()
        everyone = [torch.zeros_like(mine) for _ in range(self.world_size)]  # on the device: NCCL needs it
        torch.distributed.all_gather(everyone, mine)
        diff = max((e - everyone[0]).abs().max().item() for e in everyone)
        self.emit("ddp", {"world_size": self.world_size, "max_param_diff": diff})
        verdict = "agree exactly" if diff == 0 else f"DIFFER (largest difference {diff:.2g}): DDP lost sync"
        self.log(f"DDP: the {self.world_size} copies of the model {verdict}")

    def _serve_views(self) -> None:
        """After training: answer view commands until stopped or idle for ``serve`` s."""
        self.log("training finished; the model stays loaded for the views while you use them")
        last_command = time.monotonic()
        while not self.stop_requested and time.monotonic() - last_command < self.serve:
            for cmd in self.commands.read_objects():
                last_command = time.monotonic()
                name, args = cmd.get("cmd"), cmd.get("args") or {}
                if name == "set":
                    self._set(args.get("key"), args.get("value"))
                elif name == "sample":
                    self._views()
                elif name == "interact":
                    self._interact(args)
                elif name == "stop":
                    self.stop_requested = True
            time.sleep(SERVE_POLL)

    # -- control --
    def _poll_commands(self) -> None:
        for cmd in self.commands.read_objects():
            self._apply(cmd)

    def _sync_commands(self) -> None:
        """Under DDP: rank 0 reads the new commands (and whether it was asked to stop) and
        sends them to every rank, so all ranks pause, step, stop and change hyperparameters
        at the same step."""
        payload = [list(self.commands.read_objects()), self.stop_requested] if self.rank == 0 else [None, None]
        torch.distributed.broadcast_object_list(payload, src=0)
        commands, self.stop_requested = payload
        for cmd in commands:
            self._apply(cmd)

    def _apply(self, cmd: dict) -> None:
        name, args = cmd.get("cmd"), cmd.get("args") or {}
        if self.rank > 0 and name in ("sample", "interact", "checkpoint"):
            return  # rank 0's work
        if name == "pause":
            self.paused = True
            self.emit("state", {"state": "paused"})
        elif name == "resume":
            self.paused = False
            self.emit("state", {"state": "running"})
        elif name == "step":
            if not self.paused:
                self.paused = True
                self.emit("state", {"state": "paused"})
            self.pending_steps += max(1, int(args.get("n", 1)))
        elif name == "stop":
            self.stop_requested = True
        elif name == "set":
            self._set(args.get("key"), args.get("value"))
        elif name == "sample":
            self._views()
        elif name == "interact":
            self._interact(args)
        elif name == "checkpoint":
            self._checkpoint()

    def _set(self, key, value) -> None:
        spec = {s.name: s for s in specs(get_config_class(self.recipe_name))}.get(key)
        if spec is None or not spec.live:
            self.log(f"{key} cannot change while training; restart the run to change it")
            return
        try:
            value = parse_value(spec, value)
        except ConfigError as e:
            self.log(f"refused: {e}")
            return
        self.recipe.set_live(key, value)
        self.params[key] = value
        self.emit("param", {"key": key, "value": value})

    # -- reporting --
    @staticmethod
    def _add(acc: dict[str, torch.Tensor], metrics: dict[str, torch.Tensor]) -> None:
        for k, v in metrics.items():
            acc[k] = acc[k] + v if k in acc else v.clone()

    def _reduce_metrics(self) -> None:
        """Under DDP, at a step every process reaches: add every process's metric sums into
        rank 0's, so the curves show the mean over all of them. One all-reduce of a few
        numbers; the counts are equal (the processes step in lockstep), so all take part."""
        if self.world_size == 1 or not self._local_n:
            return
        names = sorted(self._local)
        sums = torch.stack([self._local[k].float() for k in names])
        torch.distributed.all_reduce(sums)  # on the device: NCCL needs it
        if self.rank == 0:
            self._add(self._acc, dict(zip(names, sums / self.world_size)))
            self._acc_n += self._local_n
        self._local, self._local_n = {}, 0

    def _flush_metrics(self) -> None:
        if not self._acc_n:
            return
        names = list(self._acc)
        # One host-device sync for all metrics, at the reporting rate, not every step.
        values = (torch.stack([self._acc[k].float() for k in names]) / self._acc_n).tolist()
        self._acc, self._acc_n = {}, 0
        bad = [k for k, v in zip(names, values) if not math.isfinite(v)]
        payload = dict(zip(names, values))
        self.emit("metric", payload)
        if bad:
            raise NonFiniteLoss(f"{', '.join(bad)} became {payload[bad[0]]} at step {self.step:,}")
        now = time.monotonic()
        t0, s0 = self._window
        if now > t0 and self.step > s0:
            self._rate = (self.step - s0) / (now - t0)
            self._window = (now, self.step)
        # else a second report at the same step (under DDP, the final one after the
        # periodic one): the speed is the last window's, not 0.
        rate = self._rate
        self.emit("status", {
            # None when the data is fresh every step (no epochs): the 2-D shapes, say.
            "epoch": self.step * self.batch_size * self.world_size / self.recipe.train_size if self.recipe.train_size else None,
            "steps_per_s": rate,
            "samples_per_s": rate * self.batch_size * self.world_size,  # every process's batches
            "unit": self.recipe.unit,
            "elapsed": self.elapsed,
            "total_steps": self.total_steps,
            **memory_in_use(self.device),
        })

    def _first_step(self) -> dict:
        """This process's first training step, with the model summary recorded on the way
        (forward hooks that only read shapes): rank 0 writes it as the "model" view."""
        models = models_of(self.recipe)
        with recording(models) as shapes:
            metrics = self.recipe.train_step()
        if models and self.rank == 0:
            self._write_artifacts([Artifact("model", "data", summary_rows(models, shapes),
                                            "the network that trains: its layers, output shapes and parameters")])
        return metrics

    def _views(self) -> None:
        if self.rank > 0:
            return
        # Views run at wall-clock times, so they must not consume the training RNG streams:
        # otherwise the same run would train differently depending on when it was watched,
        # and a resumed run would not continue exactly.
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            artifacts = self.recipe.samples()
            self._write_artifacts(artifacts)  # first: scoring may wait for a one-time classifier
            metrics = self.recipe.evaluate()
        if metrics:
            self.emit("metric", metrics)

    def _interact(self, args: dict) -> None:
        """A learner's request (``{"name": "generate", "reply": "generation", "request": 3,
        ...}``): the recipe's answers are written as they come. Bad input becomes
        ``{"error": ..., "request": 3}`` under "<reply>.error", where the panel that asked
        shows it: a name of its own, so a periodic view written under the reply's name in
        the same moment cannot hide it from the studio (which shows the newest per name)."""
        name, reply = str(args.get("name", "")), str(args.get("reply") or args.get("name", "reply"))
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # as for views: training RNGs untouched
            # Each request's answers get their own files (its parts overwrite each other).
            try:
                request = int(args.get("request", 0))
            except (TypeError, ValueError):
                request = 0
            try:
                for art in self.recipe.interact(name, dict(args)):
                    self._write_artifacts([art], request)
            except ValueError as e:
                self._write_artifacts([Artifact(error_reply(reply), "data", {"error": str(e), "request": request})],
                                      request)

    def _write_artifacts(self, artifacts, request: int | None = None) -> None:
        for art in artifacts:
            rel = artifact_file(art.name, self.step, art.kind, request)
            try:
                if art.kind == "image":
                    save_png(art.data, self.rd.path / rel)
                else:
                    atomic_write_json(self.rd.path / rel, art.data)
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                good = f"step {self.saved_step:,}" if self.saved_step is not None else "none yet"
                raise DiskFull(f"disk full while writing the view {art.name!r} at step {self.step:,} (the last "
                               f"checkpoint: {good})") from None
            self.emit("sample", {"name": art.name, "kind": art.kind, "path": rel, "caption": art.caption})

    # -- checkpoints --
    def _checkpoint(self) -> None:
        self._flush_metrics()  # raises on a NaN first, so a bad model is never saved
        if self.rank > 0:
            return
        try:
            save_checkpoint(self.rd.checkpoint_path, recipe=self.recipe_name, params=self.params,
                            step=self.step, elapsed=self.elapsed, state=self.recipe.state_dict())
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            good = (f"the last good one is step {self.saved_step:,}" if self.saved_step is not None
                    else "there is no earlier one")
            raise DiskFull(f"disk full while saving the checkpoint at step {self.step:,}: freed the partial file; "
                           f"{good}") from None
        self.saved_step = self.step
        self.emit("checkpoint", {"path": "checkpoints/last.pt"})

    def _load(self, path: Path) -> None:
        ck = load_checkpoint(path, map_location=self.device)
        if ck["recipe"] != self.recipe_name:
            raise CheckpointError(f"{path} belongs to recipe {ck['recipe']!r}, not {self.recipe_name!r}")
        restore(self.recipe, ck["state"])
        set_rng_state(ck["rng"])
        self.step = int(ck["step"])
        self.elapsed = float(ck["elapsed"])
        live = {s.name for s in specs(get_config_class(self.recipe_name)) if s.live}
        for key, value in ck["params"].items():  # live changes made before the save
            if key in live and value != self.params.get(key):
                self._set(key, value)

    def _fail(self, kind: str, message: str, hint: str) -> int:
        self.emit("error", {"kind": kind, "message": message, "hint": hint})
        self.emit("state", {"state": "failed"})
        return 1


def memory_in_use(device: torch.device) -> dict[str, float]:
    """What the run holds in memory, in bytes: the process's resident memory (RAM), and on
    CUDA the tensors allocated on the GPU."""
    out = {}
    try:
        with open("/proc/self/statm") as f:
            out["ram_bytes"] = float(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        import resource

        out["ram_bytes"] = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # the peak, in KiB
    if device.type == "cuda":
        out["gpu_bytes"] = float(torch.cuda.memory_allocated(device))
    return out


def inject_nan_for_tests(at: int | None, step: int, metrics: dict) -> None:
    """GENSTUDIO_FAULT_NAN_AT=N makes the loss NaN from step N on: the tests use it to check
    that a bad loss stops the run with an event, as a real divergence would."""
    if at is not None and step >= at:
        for k in metrics:
            metrics[k] = metrics[k] * float("nan")


def main(run_dir: str, commands_from: int = 0, serve: float = 0.0) -> int:
    try:
        runner = Runner(run_dir, commands_from=commands_from, serve=serve)
    except Exception as e:
        print(f"genstudio engine: {e}", flush=True)
        return 2
    return runner.run()
