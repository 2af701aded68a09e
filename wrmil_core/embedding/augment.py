"""Training augmentation that takes capture shortcuts away from the embedding (opt-in).

When each writer's page was scanned separately, ink tone, paper colour, contrast, blur and noise
identify the writer as well as the handwriting does, and a network learns the scanner. A forger
writes on the same paper with the same scanner, so those cues must not count. After the original
RandomAffine, each training image independently gets, each with its own probability:

* elastic distortion (torchvision ``ElasticTransform``): the same letters written a little differently;
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
from torchvision.transforms import v2

# Probabilities and ranges, for words 32-128 px high: each should look like another pen, paper or
# scanner, never erase the handwriting.
P_ELASTIC, ELASTIC_ALPHA, ELASTIC_SIGMA = 0.5, 80.0, 6.0
P_THICKNESS = 0.5
P_BLUR, BLUR_SIGMA = 0.3, (0.3, 1.0)
P_PHOTOMETRIC, CONTRAST, BRIGHTNESS, GAMMA = 0.8, (0.5, 1.3), (0.75, 1.15), (0.6, 1.6)
P_NOISE, NOISE_STD = 0.5, (0.0, 0.06)


def _chance(p: float) -> bool:
    return bool(torch.rand(()) < p)


def _uniform(lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * torch.rand(()))


def _thickness(x: torch.Tensor) -> torch.Tensor:
    """Blend of ``x`` (1, H, W floats, dark ink) with its 3x3 erosion (thicker ink) or dilation (thinner)."""
    thicker = _chance(0.5)
    pooled = F.max_pool2d((-x if thicker else x)[None], 3, stride=1, padding=1)[0]
    return torch.lerp(x, -pooled if thicker else pooled, _uniform(0.3, 1.0))


def _photometric(x: torch.Tensor) -> torch.Tensor:
    """Random contrast (around the mean), brightness and gamma of (1, H, W) floats in [0, 1]."""
    x = TF.adjust_contrast(x, _uniform(*CONTRAST))
    x = TF.adjust_brightness(x, _uniform(*BRIGHTNESS))
    return TF.adjust_gamma(x.clamp(0, 1), _uniform(*GAMMA))


class ShortcutAugment:
    """uint8 image (1, H, W) with paper colour ``bg`` -> a uint8 image of the same size, augmented."""

    def __call__(self, img: torch.Tensor, bg: int) -> torch.Tensor:
        if _chance(P_ELASTIC):
            img = v2.ElasticTransform(alpha=ELASTIC_ALPHA, sigma=ELASTIC_SIGMA, fill=bg)(img)
        x = img.float() / 255.0
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
