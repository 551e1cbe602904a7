"""The prompt-to-image recipe: a text encoder and a diffusion U-Net learn together to draw
coloured shapes from captions, with caption dropout so that classifier-free guidance can
push samples towards their prompt.

Views (all from the moving average of the weights): fixed prompts with fixed noise, the
learner's prompt at the current guidance, and a guidance sweep (one row per guidance value,
the same noise in every column). Scores: the held-out diffusion loss, and prompt accuracy,
the share of images for 32 fixed (prompt, noise) pairs in which a shape classifier
(trained by our code on real shapes) reads every attribute the prompt asked for."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.schema import ConfigError
from engine.configs.text2image import GUIDANCE_MAX, TextToImageConfig
from engine.data.shapes import (ATTRIBUTES, MAX_WORDS, VOCAB, caption_of, caption_tokens, encode_captions,
                                labels_tensor, make_shapes, normalise_caption, parse_caption, random_labels)
from engine.device import autocast, fast_path
from engine.imaging import make_grid
from engine.models.diffusion import NoiseSchedule
from engine.models.ema import EMA
from engine.models.text2image import TextToImage, TextToImageArgs
from engine.recipes.base import Artifact, Recipe, RunContext

N_EVAL = 32  # fixed (prompt, noise) pairs scored every few seconds
N_VAL = 128  # held-out images for the validation loss
N_PROMPTED = 16  # images on the Prompt tab
SWEEP = (0.0, 1.0, 2.0, 4.0, 7.5)  # guidance values, one row each, on the Guidance tab
SWEEP_COLUMNS = 8
SAMPLE_SEEDS = 2  # images per prompt in the Train tab's grid
# Varied prompts for the Train tab: every shape, colour, size and position appears.
SAMPLE_PROMPTS = (
    "a small red circle at the top left",
    "a large blue square in the centre",
    "a large yellow triangle at the bottom right",
    "a small green square at the top right",
    "a large white circle at the bottom left",
    "a small yellow circle in the centre",
    "a large green triangle at the top left",
    "a small blue triangle at the bottom right",
)
P_OMIT = 0.1  # training captions leave out each attribute this often ("a red circle"), so short prompts work
WARMUP = 200  # steps of linear learning-rate warm-up
X0_CLIP = 1.0  # sampling clamps the guessed clean image to the data's range [-1, 1]
CHUNK = 256  # images per network call while sampling


def check_guidance(value) -> float:
    """The guidance scale as a float in 0..GUIDANCE_MAX, or a ValueError a learner can act on."""
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"guidance must be a number from 0 to {GUIDANCE_MAX:g}; got {value!r}") from None
    if not math.isfinite(w) or not 0.0 <= w <= GUIDANCE_MAX:
        raise ValueError(f"guidance must be from 0 to {GUIDANCE_MAX:g} (0 ignores the caption, 1 is the plain "
                         f"conditional model, 3 to 7 follow it harder); got {value!r}")
    return w


def check_prompt(text) -> str:
    """The prompt in the template's form ("a small red circle at the top left"), or a
    ValueError that says what the model can read."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("type a caption to draw, for example: a large red circle at the top left")
    return normalise_caption(text)


def prompt_labels(prompt: str, n: int, device=None) -> dict[str, torch.Tensor]:
    """The labels a prompt asks for, repeated n times: {attribute: int64 (n,)}, -1 where the
    prompt leaves the attribute open (the classifier then accepts anything)."""
    parsed = parse_caption(prompt)
    return {name: torch.full((n,), -1 if parsed[name] is None else parsed[name], dtype=torch.long, device=device)
            for name in ATTRIBUTES}


def match_text(ok: dict[str, torch.Tensor], prompt: str) -> str:
    """ "14/16 match (shape 16/16, colour 15/16, position 14/16)": every attribute right, then
    each attribute the prompt names."""
    parsed = parse_caption(prompt)
    n = len(ok["shape"])
    every = torch.stack([ok[a] for a in ATTRIBUTES]).all(0).sum().item()
    parts = ", ".join(f"{a} {ok[a].sum().item()}/{n}" for a in ATTRIBUTES if parsed[a] is not None)
    return f"{every}/{n} match" + (f" ({parts})" if parts else "")


class TextToImageRecipe(Recipe):
    checkpointed = ("model", "ema", "opt", "data_gen")  # plus the step count (state_dict)

    def __init__(self, ctx: RunContext, cfg: TextToImageConfig):
        # All CPU threads (torch's default), as the other convolutional recipes. Measured on
        # an idle 2-core machine, a step of the default preset took 151 ms on one thread and
        # 90 ms on two. With other programs busy it is the other way round, and badly (3.6 to
        # 4.8 s on two threads against 0.15 s on one: each convolution ends at a barrier that
        # waits for a descheduled thread); the steps/s on the status line show it.
        super().__init__(ctx=ctx, cfg=cfg, batch_size=cfg.batch_size, view_interval=5.0)
        dev = ctx.device
        try:
            self.prompt = check_prompt(cfg.prompt)
        except ValueError as e:
            raise ConfigError(f"prompt: {e}") from None
        self.args = TextToImageArgs(vocab=len(VOCAB), max_len=MAX_WORDS, size=cfg.size, base=cfg.base,
                                    text_dim=cfg.text_dim, schedule=cfg.schedule, timesteps=cfg.timesteps)
        self.model = TextToImage(self.args).to(dev)
        if fast_path(dev):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = EMA(self.model, cfg.ema_decay)  # the averaged weights the views use
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.0, fused=fast_path(dev))
        self.base_lr = cfg.lr
        self.steps_done = 0  # drives the learning-rate warm-up; checkpointed
        self.schedule = NoiseSchedule(cfg.schedule, cfg.timesteps, device=dev)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 2)  # batches, omissions, dropout; checkpointed

        # Fixed prompts and noise for every score and view, so they compare like with like.
        g = torch.Generator().manual_seed(cfg.seed + 1)
        shape = (3, cfg.size, cfg.size)
        self.eval_labels = {k: v.to(dev) for k, v in random_labels(N_EVAL, cfg.seed + 1).items()}
        self.eval_tokens = caption_tokens(labels_tensor(self.eval_labels))  # (N_EVAL, L)
        self.eval_noise = torch.randn(N_EVAL, *shape, generator=g).to(dev)
        self.sample_tokens = encode_captions(SAMPLE_PROMPTS, dev).repeat_interleave(SAMPLE_SEEDS, 0)
        self.sample_noise = torch.randn(len(SAMPLE_PROMPTS) * SAMPLE_SEEDS, *shape, generator=g).to(dev)
        self.prompt_noise = torch.randn(N_PROMPTED, *shape, generator=g).to(dev)
        self.sweep_noise = torch.randn(SWEEP_COLUMNS, *shape, generator=g).to(dev)
        # Held-out images with fixed timesteps and noise for the validation loss.
        val_x, val_labels = make_shapes(N_VAL, cfg.seed + 1000, cfg.size)
        self.val_x = val_x.to(dev).float().div(127.5).sub(1)
        self.val_tokens = caption_tokens(labels_tensor(val_labels)).to(dev)
        self.val_t = self.schedule.sample_t(N_VAL, "cpu", generator=g).to(dev)
        self.val_noise = torch.randn(self.val_x.shape, generator=g).to(dev)
        self.classifier = None
        if ctx.need_data:
            ctx.log(f"drawing {cfg.train_size:,} captioned shapes at {cfg.size}x{cfg.size}")
            images, labels = make_shapes(cfg.train_size, cfg.seed, cfg.size)
            self.images = images.to(dev)  # uint8 (N, 3, S, S)
            self.labels = labels_tensor(labels).to(dev)  # (N, 4)
            self.train_size = len(images)
            n_params = sum(p.numel() for p in self.model.parameters())
            ctx.log(f"{n_params:,} parameters ({sum(p.numel() for p in self.model.text.parameters()):,} in the "
                    f"text encoder); for example: {caption_of(labels, 0)!r}")

    # -- training --
    def diffusion_loss(self, model: TextToImage, x0: torch.Tensor, tokens: torch.Tensor, t: torch.Tensor,
                       noise: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """The diffusion loss: noise x_0 to x_t in one jump, and score the network's output by
        mean squared error against v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0,
        || v - v_theta(x_t, t, caption) ||^2 (from v, the noise guess eps follows exactly;
        TextToImage.v_target says why v rather than eps)."""
        x_t = self.schedule.q_sample(x0, t, noise)
        with autocast(self.ctx.device):
            pred = model.predict_v(x_t, t, tokens, drop)
        return F.mse_loss(pred.float(), model.v_target(x0, noise, t))

    def train_step(self) -> dict[str, torch.Tensor]:
        """One step: a batch of shapes and their captions (some attributes left out, and a
        share p_uncond of captions dropped for the empty one), a random timestep each."""
        dev, B = self.ctx.device, self.batch_size
        lr = self.base_lr * min(1.0, (self.steps_done + 1) / WARMUP)
        for group in self.opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, self.train_size, (B,), generator=self.data_gen).to(dev)
        keep = (torch.rand(B, len(ATTRIBUTES), generator=self.data_gen) >= P_OMIT).to(dev)
        drop = (torch.rand(B, generator=self.data_gen) < self.cfg.p_uncond).to(dev)
        x0 = self.images[idx].float().div(127.5).sub(1)  # (B, 3, S, S) in [-1, 1]
        if fast_path(dev):
            x0 = x0.contiguous(memory_format=torch.channels_last)
        tokens = caption_tokens(self.labels[idx], keep)  # (B, L)
        t = self.schedule.sample_t(B, dev)
        noise = torch.randn_like(x0)
        loss = self.diffusion_loss(self.model, x0, tokens, t, noise, drop)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.ema.update(self.model)
        self.steps_done += 1
        return {"train/loss": loss.detach()}

    def set_live(self, key, value) -> None:
        if key == "lr":
            self.base_lr = float(value)  # the warm-up scales it from the next step on
        elif key == "guidance":
            self.cfg.guidance = check_guidance(value)
        elif key == "sampler_steps":
            self.cfg.sampler_steps = int(value)
        elif key == "prompt":
            try:
                self.prompt = check_prompt(value)
                self.cfg.prompt = value
            except ValueError as e:  # a bad prompt must not stop training: keep the last good one
                self.ctx.log(f"prompt refused: {e}")
        else:
            raise KeyError(key)

    # -- generating --
    @torch.inference_mode()
    def generate(self, tokens: torch.Tensor, guidance: float | torch.Tensor, x_T: torch.Tensor,
                 model: TextToImage | None = None) -> torch.Tensor:
        """Images (N, 3, S, S) in [0, 1] for captions tokens (N, L) from noise x_T (N, 3, S, S),
        by DDIM with sampler_steps steps, guided with guidance (a number, or one per image)."""
        model = model or self.ema.model
        was_training = model.training
        model.eval()
        if torch.is_tensor(guidance):  # one value per image: split it with the images
            ws = guidance.to(x_T.device, torch.float32).split(CHUNK)
        else:  # one number for all (0 and 1 then need only one of the two predictions)
            ws = [float(guidance)] * len(x_T.split(CHUNK))
        out = []
        for tok, wc, xc in zip(tokens.split(CHUNK), ws, x_T.split(CHUNK)):
            def eps_fn(x, t, tok=tok, wc=wc):
                with autocast(self.ctx.device):
                    return model.guided_eps(x, t, tok, wc).float()

            if fast_path(self.ctx.device):
                xc = xc.contiguous(memory_format=torch.channels_last)
            out.append(self.schedule.ddim_sample(eps_fn, xc, self.cfg.sampler_steps, x0_clip=X0_CLIP))
        model.train(was_training)
        return torch.cat(out).add(1).div(2).clamp(0, 1)

    def sample_images(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n images for random full captions, at the current guidance, for export."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        tokens = caption_tokens(labels_tensor(random_labels(n, seed))).to(self.ctx.device)
        x_T = torch.randn(n, 3, self.cfg.size, self.cfg.size, generator=generator).to(self.ctx.device)
        return self.generate(tokens, self.cfg.guidance, x_T)

    # -- evaluation and views --
    @staticmethod
    def at_32(images: torch.Tensor) -> torch.Tensor:
        """64-pixel images averaged down to 32x32: the views keep the dashboard's tile layout."""
        return images if images.shape[-1] == 32 else F.adaptive_avg_pool2d(images, 32)

    def _classifier(self):
        if self.classifier is None:
            from engine.metrics.shape_classifier import get_shape_classifier

            self.classifier = get_shape_classifier(self.ctx.device, log=self.ctx.log)
        return self.classifier

    @torch.no_grad()
    def val_loss(self) -> float:
        """The diffusion loss on held-out shapes with fixed timesteps and noise (full captions)."""
        self.model.eval()
        try:
            return self.diffusion_loss(self.model, self.val_x, self.val_tokens, self.val_t, self.val_noise).item()
        finally:
            self.model.train()

    def evaluate(self) -> dict[str, float]:
        """Prompt accuracy at the current guidance: for 32 fixed captions and noise, the share
        of images in which the shape classifier reads every attribute right ("all"), and
        each attribute alone."""
        from engine.metrics.shape_classifier import score_prompts

        images = self.generate(self.eval_tokens, self.cfg.guidance, self.eval_noise)
        acc = score_prompts(self._classifier(), images, self.eval_labels)
        return {"val/loss": self.val_loss(), "quality/prompt_accuracy": acc["all"],
                **{f"quality/{name}": acc[name] for name in ("shape", "colour", "position", "size")}}

    def prompted(self, prompt: str, guidance: float) -> Artifact:
        """N_PROMPTED images for the prompt at this guidance, and how many the classifier
        agrees with."""
        from engine.metrics.shape_classifier import matches

        tokens = encode_captions([prompt], self.ctx.device).expand(N_PROMPTED, -1)
        images = self.generate(tokens, guidance, self.prompt_noise)
        ok = matches(self._classifier(), images, prompt_labels(prompt, N_PROMPTED))
        caption = f"'{prompt}' · guidance {guidance:g} · classifier: {match_text(ok, prompt)}"
        return Artifact("prompted", "image", make_grid(self.at_32(images), nrow=8), caption)

    def sweep(self, prompt: str) -> Artifact:
        """One row per guidance value in SWEEP, the same noise in each column, drawn in one
        batch; the caption gives each row's prompt accuracy."""
        from engine.metrics.shape_classifier import matches

        rows, cols = len(SWEEP), SWEEP_COLUMNS
        tokens = encode_captions([prompt], self.ctx.device).expand(rows * cols, -1)
        w = torch.tensor(SWEEP, device=self.ctx.device).repeat_interleave(cols)  # (rows*cols,)
        images = self.generate(tokens, w, self.sweep_noise.repeat(rows, 1, 1, 1))
        ok = matches(self._classifier(), images, prompt_labels(prompt, rows * cols))
        every = torch.stack([ok[a] for a in ATTRIBUTES]).all(0).view(rows, cols).sum(1).tolist()
        scores = " · ".join(f"w={g:g}: {k}/{cols}" for g, k in zip(SWEEP, every))
        caption = f"'{prompt}' · rows: guidance {', '.join(f'{g:g}' for g in SWEEP)} · classifier match {scores}"
        return Artifact("sweep", "image", make_grid(self.at_32(images), nrow=cols), caption)

    def samples(self) -> list[Artifact]:
        images = self.generate(self.sample_tokens, self.cfg.guidance, self.sample_noise)
        rows = " · ".join(f"{i + 1} {p}" for i, p in enumerate(SAMPLE_PROMPTS))
        grid = make_grid(self.at_32(images), nrow=2 * SAMPLE_SEEDS)  # two prompts per row
        out = [Artifact("samples", "image", grid,
                        f"guidance {self.cfg.guidance:g}, two prompts per row, {SAMPLE_SEEDS} images each: {rows}")]
        out.append(self.prompted(self.prompt, self.cfg.guidance))
        out.append(self.sweep(self.prompt))
        return out

    def interact(self, name: str, args: dict):
        """``generate``: draw the learner's prompt (args["prompt"]) at args["guidance"] (the
        current guidance when not given); both become current, so the periodic views follow
        them. Answers with the "prompted" images, then the guidance "sweep" for the prompt."""
        if name != "generate":
            raise ValueError(f"the prompt-to-image lesson has no {name!r} action; it has 'generate'")
        prompt = check_prompt(args.get("prompt", ""))
        guidance = check_guidance(args["guidance"]) if args.get("guidance") is not None else self.cfg.guidance
        self.prompt, self.cfg.prompt, self.cfg.guidance = prompt, prompt, guidance
        yield self.prompted(prompt, guidance)
        yield self.sweep(prompt)

    # -- checkpoints --
    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = int(state["steps_done"])
        if "updates" not in state["ema"]:  # saved before the EMA kept its own count
            self.ema.set_updates(self.steps_done)


RECIPE = TextToImageRecipe
