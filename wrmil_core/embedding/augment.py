"""Training augmentation that takes capture shortcuts away from the embedding (opt-in).

When each writer's page was scanned separately, ink tone, paper colour, contrast, blur and noise
identify the writer as well as the handwriting does, and a network learns the scanner. A forger
writes on the same paper with the same scanner, so those cues must not count. After the original
RandomAffine, half the training images (``P_ANY``) get, each with its own probability:

* elastic distortion: a smooth random displacement field (random offsets on a coarse grid of
  control points, upsampled bicubically), the same letters written a little differently -- ten
  times cheaper than torchvision's ``ElasticTransform``, which blurs a full-size noise field;
* ink thickness: grey-level erosion (thicker dark ink) or dilation (thinner), a 3x3 max-pool blended
  with the image by a random weight, so pens and scanner resolutions vary;
* Gaussian blur (focus, scanner optics);
* contrast, brightness and gamma: ink tone and paper level;
* Gaussian pixel noise (sensor and paper grain).

Every random draw comes from torch's global generator, like ``RandomAffine.get_params``, which the
training loop and the DataLoader workers seed per epoch: the same seed gives the same images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

# Probabilities and ranges, for words 32-128 px high: each should look like another pen, paper or
# scanner, never erase the handwriting. Half the images pass untouched (P_ANY): on AHAWP (cpu
# preset, writer fold 0) augmenting every image with wider ranges (contrast down to 0.5, noise to
# 0.06, blur to 1.0) kept the training loss near chance for 16 epochs -- val AUC 0.71, test 0.64 --
# where these settings reach val 0.83, test 0.74.
P_ANY = 0.5
P_ELASTIC, ELASTIC_PX, ELASTIC_CELL = 0.5, 0.03, 16  # max offset (fraction of height), grid cell (px)
P_THICKNESS, THICKNESS_BLEND = 0.5, (0.2, 0.6)
P_BLUR, BLUR_SIGMA = 0.3, (0.3, 0.8)
P_PHOTOMETRIC, CONTRAST, BRIGHTNESS, GAMMA = 0.8, (0.65, 1.2), (0.8, 1.1), (0.7, 1.4)
P_NOISE, NOISE_STD = 0.5, (0.0, 0.04)


def _chance(p: float) -> bool:
    return bool(torch.rand(()) < p)


def _uniform(lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * torch.rand(()))


def _elastic(x: torch.Tensor) -> torch.Tensor:
    """Smooth random warp of (1, H, W) floats: offsets up to ``ELASTIC_PX * H`` pixels; pixels
    pulled from outside the image repeat its border (the paper)."""
    h, w = x.shape[-2:]
    coarse = (torch.rand(1, 2, h // ELASTIC_CELL + 2, w // ELASTIC_CELL + 2) * 2 - 1) * ELASTIC_PX * h
    offsets = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    # pixels -> grid_sample's normalised [-1, 1] coordinates, as (1, H, W, [x, y])
    offsets = (offsets * torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)).permute(0, 2, 3, 1)
    identity = F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False)
    return F.grid_sample(x[None], identity + offsets, mode="bilinear", padding_mode="border", align_corners=False)[0]


def _thickness(x: torch.Tensor) -> torch.Tensor:
    """Blend of ``x`` (1, H, W floats, dark ink) with its 3x3 erosion (thicker ink) or dilation (thinner)."""
    thicker = _chance(0.5)
    pooled = F.max_pool2d((-x if thicker else x)[None], 3, stride=1, padding=1)[0]
    return torch.lerp(x, -pooled if thicker else pooled, _uniform(*THICKNESS_BLEND))


def _photometric(x: torch.Tensor) -> torch.Tensor:
    """Random contrast (around the mean), brightness and gamma of (1, H, W) floats in [0, 1]."""
    x = TF.adjust_contrast(x, _uniform(*CONTRAST))
    x = TF.adjust_brightness(x, _uniform(*BRIGHTNESS))
    return TF.adjust_gamma(x.clamp(0, 1), _uniform(*GAMMA))


class ShortcutAugment:
    """uint8 image (1, H, W) -> a uint8 image of the same size, augmented."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if not _chance(P_ANY):
            return img
        x = img.float() / 255.0
        if _chance(P_ELASTIC):
            x = _elastic(x)
        if _chance(P_THICKNESS):
            x = _thickness(x)
        if _chance(P_BLUR):
            sigma = _uniform(*BLUR_SIGMA)
            x = TF.gaussian_blur(x, [5, 5], [sigma, sigma])
        if _chance(P_PHOTOMETRIC):
            x = _photometric(x)
        if _chance(P_NOISE):
            x = x + torch.randn_like(x) * _uniform(*NOISE_STD)
        return (x.clamp(0, 1) * 255.0).round().to(torch.uint8)
