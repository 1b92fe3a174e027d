"""One pix2pix training step: our recipe against a minimal copy of the reference implementation's.

Run by hand: ``python benchmarks/training_reference.py [--size 128] [--threads 1] [--rounds 4]``.
Results go to docs/benchmarks.md with the machine and date.

The reference is pytorch-CycleGAN-and-pix2pix (Isola, Zhu et al.), written again here from
its published structure, not copied: ``UnetGenerator`` (``num_downs`` = log2 of the size
less 0 ... its ``unet_128``/``unet_256``: 7 and 8 stages; each stage LeakyReLU 0.2, 4x4
stride-2 convolution, batch norm; up: ReLU, 4x4 stride-2 transposed convolution, batch
norm, dropout 0.5 in the three innermost stages below the bottleneck; the outermost
without norm and with tanh), ``NLayerDiscriminator`` (3 layers, batch norm) on the pair,
``GANLoss('vanilla')`` (BCE with logits, D's loss halved) plus 100 x L1, Adam 2e-4 with
beta1 0.5. Same width, size, batch, input channels (our 5: sketch and hint channels)
and threads as ours. Its data loader augments in worker processes; ours augments inside
the step (warp, freehand lines, hints, recolouring), which is counted on our side.

Both steps run in interleaved rounds (A B A B ...); each row gives the medians and the
ratio per round (median, min-max).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sketchapp.core.data.datasets import PairSet
from sketchapp.core.device import configure_cpu_threads
from sketchapp.core.engines.pix2pix.recipe import Pix2PixRecipe, Pix2PixTrainSettings

sys.path.insert(0, str(Path(__file__).parent))
from decoder import interleaved, ratio_text  # noqa: E402


class ReferenceBlock(nn.Module):
    """One U-Net stage of the reference: down, the inner stages, up, and the skip connection."""

    def __init__(self, outer: int, inner: int, sub: nn.Module | None, outermost: bool = False, dropout: bool = False,
                 in_channels: int | None = None) -> None:
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(in_channels or outer, inner, 4, 2, 1, bias=False)
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
            layers = [down, sub, *up]
        elif sub is None:  # innermost
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False),
                      nn.BatchNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def reference_generator(in_channels: int, out_channels: int, downs: int, ngf: int) -> nn.Module:
    block = ReferenceBlock(ngf * 8, ngf * 8, None)
    for _ in range(downs - 5):
        block = ReferenceBlock(ngf * 8, ngf * 8, block, dropout=True)
    block = ReferenceBlock(ngf * 4, ngf * 8, block)
    block = ReferenceBlock(ngf * 2, ngf * 4, block)
    block = ReferenceBlock(ngf, ngf * 2, block)
    return ReferenceBlock(out_channels, ngf, block, outermost=True, in_channels=in_channels)


def reference_discriminator(in_channels: int, ndf: int, layers: int = 3) -> nn.Module:
    seq: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, layers):
        previous, mult = mult, min(2**n, 8)
        seq += [nn.Conv2d(ndf * previous, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    previous, mult = mult, min(2**layers, 8)
    seq += [nn.Conv2d(ndf * previous, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*seq)


class ReferenceStep:
    """The reference's ``optimize_parameters``: D on (real, fake.detach()) halved, then G on GAN + 100 L1."""

    def __init__(self, size: int, width: int, batch: int, in_channels: int) -> None:
        self.g = reference_generator(in_channels, 3, int(math.log2(size)), width)
        self.d = reference_discriminator(in_channels + 3, width)
        self.opt_g = torch.optim.Adam(self.g.parameters(), 2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), 2e-4, betas=(0.5, 0.999))
        self.real_a = torch.rand(batch, in_channels, size, size) * 2 - 1
        self.real_b = torch.rand(batch, 3, size, size) * 2 - 1
        self.bce, self.l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    def __call__(self) -> None:
        fake = self.g(self.real_a)
        self.opt_d.zero_grad()
        pred_fake = self.d(torch.cat([self.real_a, fake.detach()], 1))
        pred_real = self.d(torch.cat([self.real_a, self.real_b], 1))
        loss_d = 0.5 * (self.bce(pred_fake, torch.zeros_like(pred_fake)) + self.bce(pred_real, torch.ones_like(pred_real)))
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        pred = self.d(torch.cat([self.real_a, fake], 1))
        loss_g = self.bce(pred, torch.ones_like(pred)) + 100 * self.l1(fake, self.real_b)
        loss_g.backward()
        self.opt_g.step()


def ours(size: int, width: int, batch: int) -> tuple[Pix2PixRecipe, object]:
    rng = np.random.default_rng(0)
    pairs = PairSet(rng.integers(0, 256, (batch, size, size), dtype=np.uint8),
                    rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8), [str(i) for i in range(batch)])
    recipe = Pix2PixRecipe(Pix2PixTrainSettings(size=size, gf=width, df=width, batch_size=batch))
    recipe.set_data(pairs, torch.device("cpu"))
    for network in recipe.networks().values():
        network.train()
    generator = torch.Generator().manual_seed(0)
    return recipe, lambda: recipe.step("train", torch.arange(batch), generator, (0, 1), torch.device("cpu"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    threads = configure_cpu_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} thread(s), "
          f"{args.size} px, width {args.width}, batch {args.batch}\n")
    _, our_step = ours(args.size, args.width, args.batch)
    reference = ReferenceStep(args.size, args.width, args.batch, 5)
    ours_ms, reference_ms, ratios = interleaved(our_step, reference, args.rounds)
    print("| step | ours s | reference s | ours / reference per round |\n|---|---:|---:|---:|")
    print(f"| whole step | {ours_ms / 1000:.2f} | {reference_ms / 1000:.2f} | {ratio_text(ratios)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
