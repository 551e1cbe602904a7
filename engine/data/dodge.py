"""Dodge: a tiny game drawn by our own code, the world the world-model lesson learns.

A paddle sits on the bottom of a 28x28 screen; square rocks fall from the top, a new one
every SPAWN_EVERY steps. Half of them are dropped right above the paddle (give or take
AIM_JITTER pixels), the others anywhere. Each step the agent moves left, stays, or moves
right (actions 0, 1, 2), and earns 1 point for every step it survives. A rock that touches
the paddle ends the episode; so does MAX_STEPS.

Many episodes run in lockstep as numpy arrays (one row per episode), so a whole batch of
rollouts costs a few array operations a step. Every random number an episode will use is
drawn from the seed when the batch is made: the same seed and the same moves give the same
frames, and two policies played on one seed meet the same random draws, so their returns
can be compared episode by episode.
"""

from __future__ import annotations

import numpy as np

SIZE = 28  # the screen is SIZE x SIZE pixels, one channel
PADDLE_W, PADDLE_H = 6, 2
PADDLE_Y = SIZE - PADDLE_H - 1  # top row of the paddle (rows 25 and 26)
ROCK = 4  # rocks are ROCK x ROCK squares
FALL = 2  # pixels a rock falls per step
MOVE = 2  # pixels the paddle moves per step
SPAWN_EVERY = 7  # steps between two rocks
AIMED = 0.5  # the share of rocks dropped right above the paddle
AIM_JITTER = 2  # ... give or take this many pixels
SLOTS = 3  # rocks on screen at once, at most (a rock lives SIZE / FALL = 14 steps)
MAX_STEPS = 100
ACTIONS = 3  # 0: left, 1: stay, 2: right


class Dodge:
    """``n`` episodes of the game in lockstep, deterministic given ``seed``."""

    def __init__(self, n: int, seed: int, max_steps: int = MAX_STEPS):
        rng = np.random.default_rng(seed)
        self.n, self.max_steps = n, max_steps
        self.paddle = rng.integers(0, SIZE - PADDLE_W + 1, n)  # (N,) left edge of the paddle
        # Everything random about the rocks is drawn now: where each would fall if dropped at
        # random, whether it is aimed at the paddle instead, and how far it misses the centre.
        k = max_steps // SPAWN_EVERY + 2
        self.spawn_x = rng.integers(0, SIZE - ROCK + 1, (n, k))
        self.aimed = rng.random((n, k)) < AIMED
        self.jitter = rng.integers(-AIM_JITTER, AIM_JITTER + 1, (n, k))
        self.rock_x = np.zeros((n, SLOTS), dtype=np.int64)
        self.rock_y = np.full((n, SLOTS), SIZE, dtype=np.int64)  # y >= SIZE: the slot is empty
        self.t = 0
        self.done = np.zeros(n, dtype=bool)
        self.steps_alive = np.zeros(n, dtype=np.int64)  # the return so far (1 per step survived)
        self._spawn()

    def _spawn(self) -> None:
        if self.t % SPAWN_EVERY == 0:
            k = self.t // SPAWN_EVERY
            slot = k % SLOTS  # the oldest slot: its rock has left the screen by now
            # An aimed rock starts above the paddle's centre (give or take AIM_JITTER pixels),
            # so a paddle that stands still is hit; the others fall anywhere.
            above = self.paddle + (PADDLE_W - ROCK) // 2 + self.jitter[:, k]
            x = np.where(self.aimed[:, k], above, self.spawn_x[:, k])
            self.rock_x[:, slot] = np.clip(x, 0, SIZE - ROCK)
            self.rock_y[:, slot] = 0

    def hit(self) -> np.ndarray:
        """(N,) bool: some rock overlaps the paddle."""
        px = self.paddle[:, None]
        cols = (self.rock_x < px + PADDLE_W) & (px < self.rock_x + ROCK)
        rows = (self.rock_y < PADDLE_Y + PADDLE_H) & (PADDLE_Y < self.rock_y + ROCK)
        return (cols & rows).any(1)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move every live episode by its action (N,) in {0, 1, 2}; returns (reward, done),
        both (N,). The reward is 1 for a step survived, 0 for the step that ends in a hit
        and for episodes already over. ``done`` is True once a rock hit or time ran out."""
        live = ~self.done
        move = (np.asarray(action, dtype=np.int64) - 1) * MOVE
        self.paddle = np.where(live, np.clip(self.paddle + move, 0, SIZE - PADDLE_W), self.paddle)
        self.rock_y = np.where(live[:, None], self.rock_y + FALL, self.rock_y)
        self.t += 1
        self._spawn()
        crashed = live & self.hit()
        reward = (live & ~crashed).astype(np.float32)
        self.steps_alive += reward.astype(np.int64)
        self.done = self.done | crashed | (self.t >= self.max_steps)
        self.crashed = crashed  # (N,) this step ended in a hit: the world model learns to predict it
        return reward, self.done.copy()

    def frames(self) -> np.ndarray:
        """(N, SIZE, SIZE) uint8: the paddle and the rocks in white on black."""
        ys, xs = np.arange(SIZE)[:, None], np.arange(SIZE)[None, :]  # (SIZE, 1), (1, SIZE)

        def box(x, y, w, h):  # x, y: (...) corners -> (..., SIZE, SIZE) masks
            x, y = x[..., None, None], y[..., None, None]
            return (xs >= x) & (xs < x + w) & (ys >= y) & (ys < y + h)

        paddle = box(self.paddle, np.full(self.n, PADDLE_Y), PADDLE_W, PADDLE_H)  # (N, SIZE, SIZE)
        rocks = box(self.rock_x, self.rock_y, ROCK, ROCK).any(1)  # (N, SLOTS, ...) -> (N, SIZE, SIZE)
        return ((paddle | rocks) * 255).astype(np.uint8)


def random_actions(n: int, rng: np.random.Generator, previous: np.ndarray | None = None,
                   keep: float = 0.0) -> np.ndarray:
    """(n,) actions drawn uniformly; with ``keep`` > 0, each episode repeats its previous
    action with that probability (a wandering paddle that crosses the screen, for data)."""
    fresh = rng.integers(0, ACTIONS, n)
    if previous is None or keep <= 0:
        return fresh
    return np.where(rng.random(n) < keep, previous, fresh)


def collect(episodes: int, seed: int, keep: float = 0.8, max_steps: int = MAX_STEPS) -> dict[str, np.ndarray]:
    """Play ``episodes`` episodes with a random policy and record them, padded to max_steps:
    "frames" (E, T+1, 28, 28) uint8 (frame t is seen before action t), "actions" (E, T) int8,
    "crash" (E, T) bool (action t ended the episode in a hit), "length" (E,) steps played."""
    env = Dodge(episodes, seed, max_steps)
    rng = np.random.default_rng(seed + 1)
    frames = np.zeros((episodes, max_steps + 1, SIZE, SIZE), dtype=np.uint8)
    actions = np.zeros((episodes, max_steps), dtype=np.int8)
    crash = np.zeros((episodes, max_steps), dtype=bool)
    length = np.zeros(episodes, dtype=np.int64)
    frames[:, 0] = env.frames()
    a = None
    for t in range(max_steps):
        live = ~env.done
        if not live.any():
            break
        a = random_actions(episodes, rng, a, keep)
        env.step(a)
        actions[live, t] = a[live]
        crash[:, t] = env.crashed
        length += live
        frames[live, t + 1] = env.frames()[live]
    return {"frames": frames, "actions": actions, "crash": crash, "length": length}
