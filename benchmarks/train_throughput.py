"""Training and inference throughput (images/s) and peak memory of each embedding preset.

    .venv/bin/python benchmarks/train_throughput.py                          # CPU: demo preset
    .venv/bin/python benchmarks/train_throughput.py --presets demo,cpu,gpu,paper --n-images 4096   # a GPU

Per preset, on synthetic word images (written to a temporary directory):

* ``in-step``: today's training loop, exactly as ``arcface_model`` runs it in process
  (``train_embedding``: DataLoader decoding and augmenting PNGs in ``num_workers`` processes, AdamW,
  one-cycle, grad clipping; bf16 autocast and ``channels_last=True`` on CUDA), timed between its
  first and last optimiser step by a callback, so start-up and validation are left out. Off with
  ``--no-in-step``.
* ``cached``: the same network, margin head and optimiser stepped on batches drawn from
  pre-decoded uint8 tensors (decoded and resized once, no augmentation), so PNG decoding on the
  CPU is not the limit: the compute ceiling of the device. On CUDA with bf16 autocast and
  channels-last memory format (the network normalises the uint8 input itself).
* ``inference``: ``EmbeddingNet.embed`` on the cached tensors (eval mode, no gradients; bf16 and
  channels-last on CUDA), and ``embed_words`` (today's inference path from PNG files).

Peak memory: ``torch.cuda.max_memory_allocated`` per measurement on CUDA; on CPU the process's peak
resident set so far (it only grows across presets). Backbones are randomly initialised (the cost of
a step does not depend on the weights). Targets (issue 14): ``paper`` >= 3,000 training images/s
on one H100, >= 10,000 inference words/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import torch

from wrmil_core import runtime
from wrmil_core.data.ingest import ingest
from wrmil_core.embedding.callbacks import Callback
from wrmil_core.embedding.config import EmbeddingConfig, preset
from wrmil_core.embedding.data import WordImageDataset, WordTransform, make_loader
from wrmil_core.embedding.heads import build_head
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.model import build_model
from wrmil_core.embedding.state import TrainNet
from wrmil_core.embedding.train import train_embedding
from wrmil_core.runtime import resolve_device, use_bf16
from wrmil_core.synth import SynthConfig, generate_dataset


class StepTimer(Callback):
    """Clock of the training loop's optimiser steps: images/s between the first and the last."""

    def __init__(self, batch: int):
        self.batch, self.times = batch, []

    def on_step(self, state, step, loss) -> None:
        if self.times and step == 0:
            return  # one epoch is timed
        if loss.device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())

    @property
    def images_per_s(self) -> float:
        return (len(self.times) - 1) * self.batch / (self.times[-1] - self.times[0])


def synthetic_words(root: Path, n_images: int) -> pl.DataFrame:
    """``n_images`` synthetic word images drawn from at least 24 writers (126 words each), so the
    P x K presets (16 writers per batch) find enough training writers."""
    n_writers = max(24, -(-n_images // (9 * 14)))
    generate_dataset(root, SynthConfig(n_writers=n_writers, n_sessions=1, reps_per_session=9))
    words = ingest(root, verify_images=False).words
    return words.sample(min(n_images, words.height), seed=0).sort("word_id")


def decode_cache(words: pl.DataFrame, cfg: EmbeddingConfig) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Every image decoded and resized once: uint8 (N, 1, H, W), writer labels, decode images/s."""
    dataset = WordImageDataset(words["path"].to_list(), words["writer"].rank("dense").to_numpy() - 1,
                               WordTransform(cfg, train=False))
    t = time.perf_counter()
    xs, ys = [], []
    for batch in make_loader(dataset, 256, num_workers=0):
        xs.append(batch["x"])
        ys.append(batch["y"])
    seconds = time.perf_counter() - t
    return torch.cat(xs), torch.cat(ys), len(dataset) / seconds


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA allocation since the last reset, or the process's peak RSS on CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(device: torch.device, fn: Callable[[], None], steps: int, warmup: int) -> float:
    """Seconds for ``steps`` calls of ``fn`` after ``warmup`` untimed ones (device synchronised)."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def cached_training(cfg: EmbeddingConfig, cache: torch.Tensor, labels: torch.Tensor, device: torch.device,
                    steps: int) -> tuple[float, float]:
    """Training images/s and peak MiB from the pre-decoded cache (bf16 + channels-last on CUDA)."""
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    torch.manual_seed(cfg.seed)
    net = TrainNet(build_model(cfg, load_weights=False), build_head(cfg, int(labels.max()) + 1))
    net = net.to(device, memory_format=fmt).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    src = cache.pin_memory() if cuda else cache
    gen = torch.Generator().manual_seed(cfg.seed)

    def step() -> None:
        idx = torch.randint(len(src), (cfg.batch_size,), generator=gen)
        x = src[idx].to(device, non_blocking=True).contiguous(memory_format=fmt)
        y = labels[idx].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16(device)):
            loss = net(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()

    seconds = timed(device, step, steps, warmup=3)
    return steps * cfg.batch_size / seconds, peak_memory_mb(device)


def cached_inference(cfg: EmbeddingConfig, cache: torch.Tensor, device: torch.device, steps: int
                     ) -> tuple[float, float]:
    """Inference images/s and peak MiB from the pre-decoded cache (bf16 + channels-last on CUDA)."""
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = build_model(cfg, load_weights=False).to(device, memory_format=fmt).eval()
    batch = 4 * cfg.batch_size if cuda else 64
    src = (cache.pin_memory() if cuda else cache)[:batch]

    def step() -> None:
        with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                    enabled=use_bf16(device)):
            model.embed(src.to(device, non_blocking=True).contiguous(memory_format=fmt))

    seconds = timed(device, step, steps, warmup=2)
    return steps * len(src) / seconds, peak_memory_mb(device)


def in_step_training(cfg: EmbeddingConfig, words: pl.DataFrame, out: Path) -> float:
    """Images/s of today's in-process training loop over one epoch of ``words`` (PNG decoding included)."""
    writers = words["writer"].unique().sort()
    val_writers = set(writers[-4:].to_list())
    train = words.filter(~pl.col("writer").is_in(list(val_writers)))
    val = words.filter(pl.col("writer").is_in(list(val_writers)))
    run_cfg = dataclasses.replace(cfg, epochs=1, image_budget=None, max_train_images_per_epoch=None,
                                  max_val_images=200, val_pairs=1000, val_queries=100, patience=0,
                                  channels_last=cfg.device == "cuda")
    timer = StepTimer(cfg.batch_size)
    train_embedding(train, val, run_cfg, out, resume=False, callbacks=[timer])
    return timer.images_per_s


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="demo", help="comma-separated: demo,cpu,gpu,paper")
    p.add_argument("--n-images", type=int, default=1024, help="synthetic images (cache and in-step epoch)")
    p.add_argument("--steps", type=int, default=10, help="timed steps of each cached measurement")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, help="override the presets' batch size")
    p.add_argument("--no-in-step", action="store_true", help="skip today's in-step training (the slow part)")
    return p.parse_args()


def bench_preset(name: str, a: argparse.Namespace, words: pl.DataFrame, device: torch.device, tmp: Path) -> None:
    """Print one preset's figures."""
    cfg = preset(name, device=device.type, **({"batch_size": a.batch_size} if a.batch_size else {}))
    cache, labels, decode_rate = decode_cache(words, cfg)
    # The torch threads of today's loop (the cores its DataLoader workers leave), so the cached and
    # in-step figures compare the same compute; oversubscribed cores only add noise.
    with runtime.cpu_threads(device, cfg.cpu_threads, cfg.num_workers) as threads:
        train_rate, train_mem = cached_training(cfg, cache, labels, device, a.steps)
        infer_rate, infer_mem = cached_inference(cfg, cache, device, a.steps)
        t = time.perf_counter()
        embed_words(build_model(cfg, load_weights=False), words, batch_size=64, device=device.type)
        files_rate = words.height / (time.perf_counter() - t)
    print(f"\n{name}: {cfg.backbone} at {cfg.img_h}x{cfg.img_w}, batch {cfg.batch_size}, {len(cache)} images, "
          f"{device}{' bf16 + channels-last' if device.type == 'cuda' else f', {threads} torch thread(s)'}")
    print(f"  PNG decode + resize (1 process):        {decode_rate:9.1f} images/s")
    print(f"  training, pre-decoded cache:            {train_rate:9.1f} images/s  peak {train_mem:8.0f} MiB")
    if not a.no_in_step:
        in_step = in_step_training(cfg, words, tmp / f"in_step_{name}")
        print(f"  training, in-step (today's loop):       {in_step:9.1f} images/s  "
              f"(cache / in-step: {train_rate / in_step:.2f}x)")
    print(f"  inference, pre-decoded cache:           {infer_rate:9.1f} images/s  peak {infer_mem:8.0f} MiB")
    print(f"  inference, embed_words from PNG files:  {files_rate:9.1f} images/s")


def main() -> None:
    a = parse_args()
    device = resolve_device(a.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {runtime.available_cores()} core(s)"
    print(f"device: {name}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        words = synthetic_words(Path(tmp) / "raw", a.n_images)
        for preset_name in a.presets.split(","):
            bench_preset(preset_name.strip(), a, words, device, Path(tmp))


if __name__ == "__main__":
    main()
