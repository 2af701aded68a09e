"""A synthetic writer's personal style, and its slow drift from session to session.

Identity lives mostly in letter shapes: for every character a writer has an allograph habit
(how often the letter comes from a second Hershey face instead of the writer's main one), a
fixed small affine distortion, a fixed offset and a fixed smooth displacement field over the
glyph. The global parameters (slant,
size, width, spacing, stroke width, ink, baseline drift, tremor) are drawn from narrow
distributions so that many writers share similar values; on their own they say little about
who wrote a word. Everything is a pure function of ``(seed, writer_id)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from wrmil_core.synth.glyphs import CHARSET, FONTS, PRINT_FONTS, SCRIPT_FONTS

N_FIELD = 3  # sinusoidal components of each letter's personal displacement field
# Salts keep the random streams of different purposes apart (writer style, session drift, samples).
SALT_STYLE = 0x5717E
SALT_SESSION = 0x5E55


@dataclass(frozen=True, eq=False)
class WriterStyle:
    """Everything that makes one synthetic writer's hand recognisable.

    Units: font units (1 unit is about a ninth of the x-height) unless noted; ``stroke_width``
    is in pixels at the nominal crop height of 56 px. Per-letter arrays are indexed by
    ``glyphs.char_index`` (printable ASCII).
    """

    writer_id: int
    base_font: str
    alt_font: str
    alt_prob: np.ndarray  # (C,) probability of drawing each character from ``alt_font`` (allograph habit)
    slant: float  # shear about the baseline, x += slant * height above baseline
    size: float  # multiplicative size factor (1 = nominal)
    aspect: float  # horizontal stretch
    spacing: float  # extra gap between letters
    word_tilt: float  # degrees, habitual rotation of the whole word
    stroke_width: float  # px at nominal height
    ink: float  # grey level of the ink, 0 = black
    baseline_amp: float  # amplitude of the wavy baseline
    baseline_period: float
    tremor: float  # amplitude of the high-frequency wobble
    variability: float  # how much this writer's samples vary (scales all per-sample noise)
    letter_affine: np.ndarray  # (C, 2, 2) personal linear distortion of each letter
    letter_offset: np.ndarray  # (C, 2) personal shift of each letter
    letter_field: np.ndarray  # (C, N_FIELD, 5): ax, ay, fx, fy, phase of a smooth warp
    letter_gap: np.ndarray  # (C,) personal extra space after each letter


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def sample_writer_style(
    writer_id: int, seed: int, *, letter_strength: float = 1.0, sample_noise: float = 1.0
) -> WriterStyle:
    """Draw writer ``writer_id``'s style for data set ``seed`` (pure function of both).

    ``letter_strength`` scales the per-letter shape perturbations (the identity signal);
    ``sample_noise`` scales how much samples of this writer vary from one another.
    """
    rng = _rng(SALT_STYLE, seed, writer_id)
    c = len(CHARSET)
    # Hand: mostly one face, a writer-specific share of letters from a second face (a print
    # writer with some script letters and vice versa, as real writers mix allographs).
    script = rng.random() < 0.55
    primary = SCRIPT_FONTS if script else PRINT_FONTS
    base_font = str(rng.choice(primary))
    other = [f for f in FONTS if f != base_font]
    alt_font = str(rng.choice(other))
    p_alt = float(rng.beta(1.5, 4.0))
    # Allograph habits are strong but not absolute: a habitual alternative letter is used most
    # of the time, any other letter only occasionally.
    habitual = rng.random(c) < p_alt
    alt_prob = np.where(habitual, rng.uniform(0.75, 1.0, size=c), rng.uniform(0.0, 0.12, size=c))

    s = letter_strength
    affine = np.eye(2)[None] + rng.normal(0.0, 0.06 * s, size=(c, 2, 2))
    affine[:, 0, 0] *= np.exp(rng.normal(0.0, 0.08 * s, size=c))  # letter width habit
    offset = rng.normal(0.0, 0.4 * s, size=(c, 2))
    field = np.empty((c, N_FIELD, 5))
    field[..., 0:2] = rng.normal(0.0, 0.5 * s, size=(c, N_FIELD, 2))
    signs = rng.choice([-1, 1], size=(c, N_FIELD, 2))
    field[..., 2:4] = rng.uniform(0.4, 1.8, size=(c, N_FIELD, 2)) * signs
    field[..., 4] = rng.uniform(0.0, 2 * np.pi, size=(c, N_FIELD))
    gap = rng.normal(0.0, 0.5 * s, size=c)

    return WriterStyle(
        writer_id=int(writer_id),
        base_font=base_font,
        alt_font=alt_font,
        alt_prob=alt_prob,
        slant=float(np.clip(rng.normal(0.12, 0.1), -0.2, 0.45)),
        size=float(np.exp(rng.normal(0.0, 0.06))),
        aspect=float(np.exp(rng.normal(0.0, 0.06))),
        spacing=float(rng.normal(0.8, 0.6)),
        word_tilt=float(rng.normal(0.0, 1.0)),
        stroke_width=float(np.clip(rng.normal(2.0, 0.25), 1.3, 3.0)),
        ink=float(rng.uniform(15.0, 60.0)),
        baseline_amp=float(abs(rng.normal(0.0, 0.8))),
        baseline_period=float(rng.uniform(25.0, 60.0)),
        tremor=float(0.05 + rng.exponential(0.1)),
        variability=float(sample_noise * np.clip(np.exp(rng.normal(0.0, 0.2)), 0.75, 1.35)),
        letter_affine=affine,
        letter_offset=offset,
        letter_field=field,
        letter_gap=gap,
    )


def session_style(style: WriterStyle, session: int, seed: int) -> WriterStyle:
    """The writer's style on a given session day: the same hand with small slow drifts."""
    rng = _rng(SALT_SESSION, seed, style.writer_id, session)
    c = len(CHARSET)
    return dataclasses.replace(
        style,
        slant=style.slant + float(rng.normal(0.0, 0.025)),
        size=style.size * float(np.exp(rng.normal(0.0, 0.025))),
        aspect=style.aspect * float(np.exp(rng.normal(0.0, 0.02))),
        spacing=style.spacing + float(rng.normal(0.0, 0.25)),
        stroke_width=style.stroke_width + float(rng.normal(0.0, 0.12)),
        ink=float(np.clip(style.ink + rng.normal(0.0, 6.0), 0.0, 110.0)),
        letter_offset=style.letter_offset + rng.normal(0.0, 0.1, size=(c, 2)),
    )
