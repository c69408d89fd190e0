"""Step 3: one training step of embedded model v2, sized to a time budget (one GPU call each).

Runs the library's own phases (``colorizer_lib.training.phases``) on shard sets
(``colorizer_lib.training.shards``) and writes, under ``--out``, what the next call needs to resume on
a fresh machine: the generator's weights (fp32, split in two files of under 16 MiB), the critic, the
metrics and the last sample grid. Stages (see README.md for the commands):

- ``small``: generator pretraining from the ImageNet encoder (or ``--init``): one frozen epoch and
  unfrozen epochs at 64 px, then unfrozen epochs at 128 px, on every photo packed at 128.
- ``small2``: more unfrozen epochs at 128 px from ``--init`` (a new one-cycle over more shards).
- ``large``: unfrozen epochs at 192 then 256 px on the photos of short side >= 200, packed at 256.
- ``gan``: critic pretraining on the large photos, then a short GAN phase (checkpoints every
  ``--save-every`` iterations with validation metrics and a sample grid).

Epoch counts come from ``--budget-s``: a few timed training steps at each size give the throughput,
and each stage gets its share of the budget.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import shutil
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]

import torch  # noqa: E402

from colorizer_lib.training.phases import (CriticConfig, GanConfig, GeneratorConfig, PreparedData,  # noqa: E402
                                           build_model, pretrain_critic, pretrain_generator, train_gan)
from colorizer_lib.training.evaluate import evaluate_batches  # noqa: E402
from colorizer_lib.training.shards import load_packed  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_rate(arch_channels, size: int, bs: int, device: torch.device, steps: int = 6) -> float:
    """Training images per second of generator + feature loss at ``size`` (bf16 autocast on CUDA)."""
    from colorizer_lib.training.losses import FeatureLoss

    model = build_model("compact", None, arch_channels).to(device)
    loss = FeatureLoss("efficientnet-lite0").to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.randn(bs, 3, size, size, device=device)
    y = torch.randn(bs, 3, size, size, device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    for i in range(steps + 2):
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with amp:
            out = loss(model(x), y)
        opt.zero_grad()
        out.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return bs * steps / (time.perf_counter() - t0)


def plan_epochs(n: int, shares: list[tuple[int, int, float]], budget: float, device, channels,
                fixed: list[int] | None = None, plan_path: Path | None = None, min_epochs: int = 1,
                max_epochs: int = 60) -> list[int]:
    """Epochs per (size, bs, share of budget) so that the stage fills about ``budget`` seconds.

    The plan is kept in ``plan_path``: a stage resumed on the same machine keeps its epochs (and so its
    learning-rate schedule)."""
    if fixed:
        return list(fixed)
    if plan_path is not None and plan_path.is_file():
        epochs = json.loads(plan_path.read_text())
        log(f"  resuming with the planned epochs {epochs}")
        return epochs
    out = []
    for size, bs, share in shares:
        rate = train_rate(channels, size, bs, device)
        # fastai's loop, the data pipeline and validation cost extra: count 70 % of the raw rate.
        epochs = int(share * budget * rate * 0.7 / n)
        log(f"  {size} px, bs {bs}: {rate:.0f} img/s raw -> {epochs} epochs of {n} photos for {share * budget:.0f} s")
        out.append(max(min_epochs, min(max_epochs, epochs)))
    if plan_path is not None:
        plan_path.parent.mkdir(parents=True, exist_ok=True)
        plan_path.write_text(json.dumps(out))
    return out


def save_generator(model: torch.nn.Module, out: Path, tag: str) -> None:
    """fp32 weights in two files (encoder / the rest): each stays under the 16 MiB a device call returns."""
    sd = {k: v.detach().float().cpu() if v.is_floating_point() else v.detach().cpu() for k, v in model.state_dict().items()}
    enc = {k: v for k, v in sd.items() if k.startswith("encoder.")}
    torch.save(enc, out / f"{tag}_enc.pth")
    torch.save({k: v for k, v in sd.items() if k not in enc}, out / f"{tag}_dec.pth")


def load_generator(prefix: str) -> dict:
    sd = torch.load(prefix + "_enc.pth", map_location="cpu", weights_only=True)
    sd.update(torch.load(prefix + "_dec.pth", map_location="cpu", weights_only=True))
    return sd


def init_file(prefix: str | None, work: Path) -> str | None:
    """``--init PREFIX`` (``PREFIX_enc.pth`` + ``PREFIX_dec.pth``) joined into one file for ``init_weights``."""
    if not prefix:
        return None
    if prefix.endswith(".pth") and Path(prefix).is_file():  # a whole state dict (a phase's generator.pth)
        return prefix
    path = work / "init_generator.pth"
    torch.save(load_generator(prefix), path)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["small", "small2", "large", "gan"])
    ap.add_argument("--train", nargs="+", required=True, help="shard set folders to train on")
    ap.add_argument("--valid", required=True, help="the validation shard set (never trained on)")
    ap.add_argument("--work", default="/tmp/v2work")
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", help="generator to start from: PREFIX of PREFIX_enc.pth / PREFIX_dec.pth")
    ap.add_argument("--critic", help="critic.pth to start the GAN phase from (skips critic pretraining)")
    ap.add_argument("--budget-s", type=float, default=300)
    ap.add_argument("--decoder-channels", type=int, nargs=4, default=None)
    ap.add_argument("--gan-iterations", type=int, default=600)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--gan-size", type=int, default=256)
    ap.add_argument("--critic-epochs", type=int, default=3)
    ap.add_argument("--epochs", type=int, nargs="+", help="epochs per size instead of planning from --budget-s")
    ap.add_argument("--bs-scale", type=float, default=1.0, help="multiply every batch size (CPU smoke tests)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()
    args.train = sorted({p for pattern in args.train for p in (glob.glob(pattern) if "*" in pattern else [pattern])})
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cudnn.benchmark = True
    channels = tuple(args.decoder_channels) if args.decoder_channels else None
    t_start = time.time()
    summary: dict = {"stage": args.stage, "args": vars(args), "device": str(device),
                     "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}

    pack = 128 if args.stage in ("small", "small2") else 256
    t0 = time.time()
    train, recs = load_packed(args.train, pack, workers=args.workers)
    valid, vrecs = load_packed(args.valid, pack, workers=args.workers)
    sources: dict[str, int] = {}
    for r in recs:
        sources[r.source] = sources.get(r.source, 0) + 1
    summary.update(n_train=len(train), n_valid=len(valid), train_sources=sources, decode_s=round(time.time() - t0, 1))
    log(f"decoded {len(train)} training + {len(valid)} validation photos at {pack} px in {time.time() - t0:.1f} s: {sources}")
    data = PreparedData([], [], train, valid)
    n = len(train)
    budget = args.budget_s
    init = init_file(args.init, work)
    common = dict(device=args.device, num_workers=0)
    result = None

    def B(bs: int) -> int:
        return max(2, int(bs * args.bs_scale))

    if args.stage == "small":
        e = plan_epochs(n, [(64, B(256), 0.35), (128, B(128), 0.65)], budget, device, channels, args.epochs,
                        work / "1_small" / "plan.json")
        frozen = 1
        e[0] = max(1, e[0] - frozen)
        cfg = GeneratorConfig(str(work / "1_small"), init_weights=init, decoder_channels=channels, sizes=(64, 128),
                              epochs=tuple(e), bs=(B(256), B(128)), frozen_epochs=frozen, lr=2e-3, unfrozen_lr=(1e-4, 1e-3),
                              metrics_every=max(1, sum(e) // 4), **common)
        result = pretrain_generator(cfg, data)
    elif args.stage == "small2":
        e = plan_epochs(n, [(128, B(128), 1.0)], budget, device, channels, args.epochs,
                        work / "1_small2" / "plan.json")
        cfg = GeneratorConfig(str(work / "1_small2"), init_weights=init, decoder_channels=channels, sizes=(128,),
                              epochs=tuple(e), bs=(B(128),), frozen_epochs=0, unfrozen_lr=(5e-5, 5e-4),
                              metrics_every=max(1, e[0] // 3), **common)
        result = pretrain_generator(cfg, data)
    elif args.stage == "large":
        e = plan_epochs(n, [(192, B(64), 0.4), (256, B(32), 0.6)], budget, device, channels, args.epochs,
                        work / "1_large" / "plan.json")
        cfg = GeneratorConfig(str(work / "1_large"), init_weights=init, decoder_channels=channels, sizes=(192, 256),
                              epochs=tuple(e), bs=(B(64), B(32)), frozen_epochs=0, unfrozen_lr=(3e-5, 3e-4),
                              metrics_every=max(1, sum(e) // 4), **common)
        result = pretrain_generator(cfg, data)
    if result is not None:
        summary["epochs"] = e
        summary["history"] = result.history
        save_generator(result.model, out, f"gen_{args.stage}")
        size = 128 if pack == 128 else 256
        summary["final_valid"] = evaluate_batches(result.model.to(device), valid, size, baseline=True)
        log(f"validation at {size} px: " + json.dumps(summary["final_valid"]))
        grids = sorted((result.out_dir / "samples").glob("*.png"))
        if grids:
            shutil.copy(grids[-1], out / f"samples_{args.stage}.png")

    if args.stage == "gan":
        gen = build_model("compact", init, channels)
        crit_cfg = CriticConfig(str(work / "2_critic"), size=args.gan_size // 4 * 3, bs=B(64), epochs=args.critic_epochs,
                                lr=1e-3, **common)
        t1 = time.time()
        if args.critic:
            from colorizer_lib.models.critic import PatchCritic

            critic = PatchCritic(nf=crit_cfg.nf, n_blocks=crit_cfg.n_blocks, p=crit_cfg.dropout)
            critic.load_state_dict(torch.load(args.critic, map_location="cpu", weights_only=True))
        else:
            crit = pretrain_critic(crit_cfg, data, gen.to(device))
            critic = crit.model
            summary["critic_history"] = crit.history
            torch.save({k: v.float().cpu() for k, v in critic.state_dict().items()}, work / "critic.pth")
        summary["critic_s"] = round(time.time() - t1, 1)
        gan_cfg = GanConfig(str(work / "3_gan"), size=args.gan_size, bs=B(32), lr=2e-5, iterations=args.gan_iterations,
                            save_every=args.save_every, **common)
        gan = train_gan(gan_cfg, data, gen, critic)
        summary["gan_history"] = [{k: v for k, v in h.items() if k != "grid"} for h in gan.history]
        models = Path(gan_cfg.out_dir) / "models"
        tags = sorted(p.name[: -len("_generator.pth")] for p in models.glob("gan_*_generator.pth"))
        # Bring back up to five checkpoints, evenly spread (the caller picks by metrics and by eye).
        if len(tags) > 5:
            tags = [tags[round(i * (len(tags) - 1) / 4)] for i in range(5)]
        for tag in tags:
            g = build_model("compact", None, channels)
            g.load_state_dict(torch.load(models / f"{tag}_generator.pth", map_location="cpu", weights_only=True))
            sd = g.state_dict()
            torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, out / f"{tag}_fp16.pth")
        grids = sorted((Path(gan_cfg.out_dir) / "samples").glob("*.png"))
        if grids:
            shutil.copy(grids[-1], out / "samples_gan.png")

    summary["wall_s"] = round(time.time() - t_start, 1)
    (out / f"summary_{args.stage}.json").write_text(json.dumps(summary, indent=1, default=str))
    log(f"done in {summary['wall_s']} s")
    last = (summary.get("history") or summary.get("gan_history") or [{}])[-1]
    keys = ("tag", "epoch", "iteration", "psnr", "colorfulness", "ciede2000")
    log("last metrics: " + json.dumps({k: last.get(k) for k in keys}))


if __name__ == "__main__":
    main()
