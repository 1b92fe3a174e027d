"""Contextual completion (Lu et al. 2018): find z whose joint picture G(z) has the user's sketch.

The sketch is the known part of a sketch|image picture. We search the generator's
latent space for codes whose sketch half matches (contextual term) while the whole
picture looks real to the discriminator (realism term), optimising K candidates at
once and streaming every iteration as a Snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from sketchapp.contracts import Capabilities
from sketchapp.core.engine import CancelToken, Snapshot
from sketchapp.core.engines.contextual.model import CONTEXTUAL, JointModel
from sketchapp.core.engines.contextual.networks import sample_z
from sketchapp.core.errors import SettingsError
from sketchapp.core.prepare import hints_tensor, line_layer, sketch_tensor
from sketchapp.core.records import Record

STARTS = ("auto", "random", "encoder")
CONTEXTUAL_LOSSES = ("kl", "l1")
OPTIMIZERS = ("adam", "sgd")
_EPS = 1e-8


@dataclass(frozen=True)
class CompletionSettings(Record):
    """Everything that shapes one completion run (presets store these)."""

    WHAT = "completion settings"

    candidates: int = 8
    iterations: int = 1000  # the paper's count; the convergence stop usually ends sooner
    start: str = "auto"  # "auto": encoder if the model has one, else best of N random
    init_samples: int = 30  # N of best-of-N (paper: 30)
    contextual: str = "kl"  # the official code's KL between grey sketch halves; or "l1"
    contextual_weight: float = 100.0
    realism_weight: float = 1.0
    hint_weight: float = 1.0
    # Hints act only through optimisation, so a run with hints may optimise this long (the
    # presets stop after a few iterations, which leaves hints no time); the convergence stop
    # can still end it sooner.
    hint_iterations: int = 100
    optimizer: str = "adam"
    lr: float = 0.02
    momentum: float = 0.9  # for "sgd" (Nesterov momentum, as the official code)
    clip_z: bool = True
    encoder_jitter: float = 0.25  # spread of the other candidates around the encoder's z
    patience: int = 100  # convergence stop: iterations without meaningful improvement; 0 = off
    min_improvement: float = 1e-3  # relative drop of the best loss that counts as progress
    seed: int | None = None
    channels_last: bool = True  # CPU memory layout that oneDNN convolutions run fastest in
    compile: bool = False  # torch.compile G and D: ~10 % faster, after a compile of ~30 s
    # Results carry the sketch's own lines, drawn over them at the sketch's resolution:
    # for styles whose pictures contain their line art (OpenMoji's emoji do).
    ink_lines: bool = False
    # Lines thinner than the model's training sketches' (its ``sketch_line_width``) are
    # thickened to that width before completion: a model colours little of a drawing
    # whose lines are much thinner than the ones it learnt.
    match_line_width: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise SettingsError(message)

        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "seed":
                need(value is None or (type(value) is int and 0 <= value < 2**63), f"seed must be a whole number 0..2**63-1 or null, got {value!r}")
            elif f.type == "bool":
                need(type(value) is bool, f"{f.name} must be true or false, got {value!r}")
            elif f.type == "int":
                need(type(value) is int, f"{f.name} must be a whole number, got {value!r}")
            elif f.type == "float":
                need(type(value) in (int, float) and math.isfinite(value), f"{f.name} must be a finite number, got {value!r}")
            elif f.type == "str":
                need(isinstance(value, str), f"{f.name} must be text, got {value!r}")
        need(1 <= self.candidates <= 256, f"candidates must be 1..256, got {self.candidates}")
        need(0 <= self.iterations <= 100_000, f"iterations must be 0..100000, got {self.iterations}")
        need(0 <= self.hint_iterations <= 100_000, f"hint_iterations must be 0..100000, got {self.hint_iterations}")
        need(self.start in STARTS, f"start must be one of {', '.join(STARTS)}, got {self.start!r}")
        need(1 <= self.init_samples <= 10_000, f"init_samples must be 1..10000, got {self.init_samples}")
        need(
            self.contextual in CONTEXTUAL_LOSSES,
            f"contextual loss must be one of {', '.join(CONTEXTUAL_LOSSES)}, got {self.contextual!r}",
        )
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("contextual_weight", "realism_weight", "hint_weight", "encoder_jitter", "min_improvement"):
            need(0 <= getattr(self, name) <= 1e6, f"{name} must be 0..1000000, got {getattr(self, name)}")
        need(0 < self.lr <= 100, f"lr must be in (0, 100], got {self.lr}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(self.patience >= 0, f"patience must be >= 0, got {self.patience}")


class ContextualEngine:
    """Drives latent optimisation for one loaded joint model; reusable across runs."""

    kind = CONTEXTUAL
    #: what the window offers with this engine (the worker reports it)
    capabilities = Capabilities(ghost=True, refine=True, latents=True, hints=True)

    def __init__(self, model: JointModel, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        for module in self.model.modules().values():
            module.requires_grad_(False)  # only z is optimised: no weight gradients
        self._layout = torch.contiguous_format
        self._compiled: tuple[torch.nn.Module, torch.nn.Module] | None = None

    @property
    def half_size(self) -> int:
        return self.model.config.half_size

    @property
    def z_dim(self) -> int:
        return self.model.config.z_dim

    @property
    def line_width(self) -> float | None:
        return self.model.line_width

    def set_layout(self, channels_last: bool) -> None:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        if layout is not self._layout:
            for module in self.model.modules().values():
                module.to(memory_format=layout)
            self._layout = layout

    def warm_up(self, settings: CompletionSettings | None = None) -> None:
        """A throw-away run of one iteration at the run's batch size, so the first real one comes fast.

        The first pass through each layer builds its kernels (oneDNN primitives on CPU,
        cuDNN plans on GPU), and the optimiser's backward pass (gradients for the codes
        only) needs others than a training step would: on the CPU the first real
        iteration took 0.9 s instead of 0.04 s, and could not be cancelled meanwhile.
        Doing it while the model loads takes it off the user's wait.
        """
        settings = settings or CompletionSettings()
        blank = np.full((self.half_size, self.half_size), 255, np.uint8)
        for _ in self.start(blank, None, settings.updated(iterations=1, seed=0)):
            pass

    def networks(self, compiled: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
        """G and D, optionally through torch.compile (compiled once, kept for later runs)."""
        if not compiled:
            return self.model.generator, self.model.discriminator
        if self._compiled is None:
            self._compiled = (torch.compile(self.model.generator), torch.compile(self.model.discriminator))
        return self._compiled

    def start(
        self,
        sketch: np.ndarray,
        hints: np.ndarray | None = None,
        settings: CompletionSettings | None = None,
        cancel: CancelToken | None = None,
        z: np.ndarray | None = None,
    ) -> Iterator[Snapshot]:
        """Complete ``sketch`` (uint8 grey/RGB/RGBA); see the module docstring.

        ``hints`` is an RGBA picture over the sketch: opaque pixels are colours the
        image half should have. ``z`` (k, z_dim) starts from given codes (refinement)
        instead, with k candidates. The iterator ends without a final Snapshot when
        ``cancel`` is set.
        """
        settings = settings or CompletionSettings()
        run = _Run(self, sketch, hints, settings, cancel or CancelToken(), z)
        return run.snapshots()


class _Run:
    """State of one completion run; a fresh one per ``start``."""

    def __init__(
        self,
        engine: ContextualEngine,
        sketch: np.ndarray,
        hints: np.ndarray | None,
        settings: CompletionSettings,
        cancel: CancelToken,
        z: np.ndarray | None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.cancel = cancel
        self.given_z = z
        self.G, self.D = engine.networks(settings.compile)
        self.E = engine.model.encoder
        self.device = engine.device
        h = engine.half_size
        self.h = h
        line_width = engine.line_width if settings.match_line_width else None
        self.sketch_half = sketch_tensor(sketch, h, line_width).to(self.device)
        self.target_grey = _grey(self.sketch_half)
        self.target_dist = _grey_distribution(self.sketch_half)
        # The known-pixel weight map: every sketch pixel weighs 1, hint pixels their alpha.
        self.sketch_pixels = float(h * h)
        self.known_total = self.sketch_pixels
        self.hint_colours: torch.Tensor | None = None
        self.hint_weight: torch.Tensor | None = None
        if hints is not None:
            colours, alpha = hints_tensor(hints, sketch.shape, h)
            if alpha.sum() > 0:
                self.hint_colours = colours.to(self.device)
                self.hint_weight = (alpha[:, 0] * settings.hint_weight).to(self.device)
                self.known_total += float(self.hint_weight.sum())
                self.settings = settings.updated(iterations=max(settings.iterations, settings.hint_iterations))
        self.rng = torch.Generator().manual_seed(
            settings.seed if settings.seed is not None else int(torch.seed() % (2**63))
        )
        self.lines = line_layer(sketch, h) if settings.ink_lines else None

    # -- losses -------------------------------------------------------------------------
    def contextual(self, pictures: torch.Tensor) -> torch.Tensor:
        """Per-candidate contextual term on the known pixels: sketch half + hint pixels.

        The sketch half is compared in grey (sketches carry no colour): by a weighted
        L1, or by the official code's KL divergence between the grey halves seen as
        distributions. Hint pixels add a weighted L1 on the image half's colours.
        """
        h = self.h
        if self.settings.contextual == "l1":
            grey = _grey(pictures[..., :h])
            sketch = (grey - self.target_grey).abs().sum(dim=(1, 2))
        else:
            generated = _grey_distribution(pictures[..., :h])
            # KL(input sketch || generated sketch)
            sketch = (self.target_dist * (self.target_dist.log() - generated.log())).sum(dim=1)
            sketch = sketch * self.sketch_pixels
        if self.hint_colours is not None:
            diff = (pictures[..., h:] - self.hint_colours).abs().mean(dim=1) * self.hint_weight
            sketch = sketch + diff.sum(dim=(1, 2))
        return sketch / self.known_total

    def realism(self, pictures: torch.Tensor) -> torch.Tensor:
        """-log D(G(z)) per candidate: softplus(-logit) is the same, numerically stable."""
        return F.softplus(-self.D(pictures))

    # -- run ----------------------------------------------------------------------------
    def snapshots(self) -> Iterator[Snapshot]:
        """The run's Snapshots, each joint picture split into its result and the model's own sketch."""
        h = self.h
        for snapshot in self._snapshots():
            joint = snapshot.pictures
            yield replace(snapshot, pictures=joint[..., h:], sketches=joint[..., :h], lines=self.lines)

    def _snapshots(self) -> Iterator[Snapshot]:
        s = self.settings
        self.engine.set_layout(s.channels_last and self.device.type == "cpu")
        if self.given_z is not None:
            z = yield from self._fixed_start(self._given_z(), "given")
        elif s.start == "encoder" or (s.start == "auto" and self.E is not None):
            z = yield from self._fixed_start(self._encoder_z(), "encoder")
        else:
            z = yield from self._random_start()
        if z is None:  # cancelled while choosing starts
            return
        yield from self._optimise(z)

    def _given_z(self) -> torch.Tensor:
        z = torch.as_tensor(np.asarray(self.given_z, dtype=np.float32))
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.engine.z_dim or z.shape[0] < 1:
            raise SettingsError(f"z must have shape (k, {self.engine.z_dim}), got {tuple(z.shape)}")
        return z.to(self.device)

    def _encoder_z(self) -> torch.Tensor:
        """The encoder's code for the sketch, and K-1 jittered neighbours so candidates differ."""
        if self.E is None:
            raise SettingsError("this model has no encoder; use start 'random' or 'auto'")
        k = self.settings.candidates
        with torch.no_grad():
            z0 = self.E(self.sketch_half)
        jitter = (torch.rand(k - 1, self.engine.z_dim, generator=self.rng) * 2 - 1) * self.settings.encoder_jitter
        return torch.cat([z0, z0 + jitter.to(self.device)]).clamp_(-1.0, 1.0)

    def _fixed_start(self, z: torch.Tensor, source: str) -> Iterator[Snapshot]:
        """Show the starting codes at once, then hand them to the optimiser."""
        if self.cancel.cancelled:
            return None
        with torch.no_grad():
            pictures = self.G(z)
            loss = self.contextual(pictures).cpu().numpy()
        yield Snapshot(
            iteration=0,
            iterations=self.settings.iterations,
            phase="init",
            losses={"total": loss, "contextual": loss},
            best=int(np.argmin(loss)),
            pictures=pictures,
            latents=z,
            info={"start": source},
        )
        return z

    def _random_start(self) -> Iterator[Snapshot]:
        """Best K of N random codes by the contextual term, yielding after each batch of K."""
        s = self.settings
        k = s.candidates
        total = max(s.init_samples, k)
        pool_z = torch.empty(0, self.engine.z_dim, device=self.device)
        pool_loss = torch.empty(0, device=self.device)
        pool_pictures: torch.Tensor | None = None
        done = 0
        while done < total:
            if self.cancel.cancelled:
                return None
            n = min(k, total - done)
            z = sample_z(n, self.engine.z_dim, self.rng).to(self.device)
            with torch.no_grad():
                pictures = self.G(z)
                loss = self.contextual(pictures)
            pool_z = torch.cat([pool_z, z])
            pool_loss = torch.cat([pool_loss, loss])
            pool_pictures = pictures if pool_pictures is None else torch.cat([pool_pictures, pictures])
            order = torch.argsort(pool_loss)[:k]
            pool_z, pool_loss, pool_pictures = pool_z[order], pool_loss[order], pool_pictures[order]
            done += n
            losses = pool_loss.cpu().numpy()
            yield Snapshot(
                iteration=0,
                iterations=s.iterations,
                phase="init",
                losses={"total": losses, "contextual": losses},
                best=0,
                pictures=pool_pictures,
                latents=pool_z,
                info={"start": "random", "init_done": done, "init_total": total},
            )
        return pool_z

    def _optimise(self, z0: torch.Tensor) -> Iterator[Snapshot]:
        s = self.settings
        z = z0.detach().clone().requires_grad_(True)
        if s.optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam([z], lr=s.lr)
        else:
            optimizer = torch.optim.SGD([z], lr=s.lr, momentum=s.momentum, nesterov=s.momentum > 0)
        best_history: list[float] = []
        iteration = 0
        while iteration < s.iterations:
            if self.cancel.cancelled:
                return
            iteration += 1
            optimizer.zero_grad(set_to_none=True)
            pictures = self.G(z)
            contextual = self.contextual(pictures)
            realism = self.realism(pictures)
            total = s.contextual_weight * contextual + s.realism_weight * realism
            total.sum().backward()  # candidates are independent: the sum keeps their gradients apart
            latents = z.detach().clone()
            optimizer.step()
            if s.clip_z:
                with torch.no_grad():
                    z.clamp_(-1.0, 1.0)
            losses = torch.stack([total, contextual, realism]).detach().cpu().numpy()
            best = int(np.argmin(losses[0]))
            best_history.append(float(losses[0, best]))
            yield Snapshot(
                iteration=iteration,
                iterations=s.iterations,
                phase="optimise",
                losses={"total": losses[0], "contextual": losses[1], "realism": losses[2]},
                best=best,
                pictures=pictures.detach(),
                latents=latents,
            )
            if _converged(best_history, s.patience, s.min_improvement):
                break
        if self.cancel.cancelled:
            return
        final = self._final(z.detach(), iteration)
        if self.cancel.cancelled:  # cancelled during the final pass: still no result
            return
        yield final

    def _final(self, z: torch.Tensor, iteration: int) -> Snapshot:
        s = self.settings
        with torch.no_grad():
            pictures = self.G(z)
            contextual = self.contextual(pictures)
            realism = self.realism(pictures)
            total = s.contextual_weight * contextual + s.realism_weight * realism
        losses = torch.stack([total, contextual, realism]).cpu().numpy()
        return Snapshot(
            iteration=iteration,
            iterations=s.iterations,
            phase="done",
            losses={"total": losses[0], "contextual": losses[1], "realism": losses[2]},
            best=int(np.argmin(losses[0])),
            pictures=pictures,
            latents=z.clone(),
            final=True,
            info={"converged": iteration < s.iterations},
        )


def _grey(pictures: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, H, W) luma (ITU-R 601, as OpenCV's and TensorFlow's grey)."""
    return 0.299 * pictures[:, 0] + 0.587 * pictures[:, 1] + 0.114 * pictures[:, 2]


def _grey_distribution(pictures: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, H*W) grey levels normalised to sum 1."""
    values = (_grey(pictures).flatten(1) + 1.0) / 2.0 + _EPS
    return values / values.sum(dim=1, keepdim=True)


def _converged(history: list[float], patience: int, min_improvement: float) -> bool:
    """True when the best loss fell by less than min_improvement (relative) over ``patience`` steps."""
    if patience <= 0 or len(history) <= patience:
        return False
    before, now = history[-patience - 1], history[-1]
    return before - now < min_improvement * max(abs(before), _EPS)
