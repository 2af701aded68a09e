"""Deterministic synthetic handwriting in the raw data layout (``<root>/<writer>/<word>_<rep>.png``
plus the metadata CSV ``schema.DEFAULT_METADATA_CSV``), drawn with Hershey vector stroke fonts.

Each writer has a stable hand (per-letter allographs and shape distortions, plus overlapping
global habits: slant, size, spacing, stroke width, baseline drift, tremor) and every sample
varies around it. See :mod:`wrmil_core.synth.style` and :mod:`wrmil_core.synth.render`.
"""

from wrmil_core.synth.dataset import (
    CSV_COLUMNS,
    DEFAULT_PROMPTS,
    DEMO,
    METADATA_FILE,
    PAPER,
    PRESETS,
    TINY,
    SynthConfig,
    dataset_exists,
    file_stems,
    generate_dataset,
    preset,
)
from wrmil_core.synth.render import render_word
from wrmil_core.synth.style import WriterStyle, sample_writer_style, session_style

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_PROMPTS",
    "DEMO",
    "METADATA_FILE",
    "PAPER",
    "PRESETS",
    "TINY",
    "SynthConfig",
    "WriterStyle",
    "dataset_exists",
    "file_stems",
    "generate_dataset",
    "preset",
    "render_word",
    "sample_writer_style",
    "session_style",
]
