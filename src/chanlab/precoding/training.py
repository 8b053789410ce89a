"""Training of the FDD transceiver (Section IV-D, Algorithm 1) and of the learned baselines.

Loss (eq. 22): ``L = −Σ_k R_k + λ L_Q`` averaged over drops, with ``R_k`` the rate of eq. 8
under the learned precoder and the true channels, and ``L_Q`` the quantization error of eq. 23
as a mean per feature (as the paper authors' code computes it; see
:meth:`FddTransceiver.quantize <chanlab.precoding.model.FddTransceiver.quantize>`), ``λ = 1``.
Adam, learning rate warmed up linearly from 0 over ``warmup_epochs`` and then cosine-annealed
from ``lr`` to ``lr_min`` (Section VI-C: 1e-3 -> 1e-5), batches of 500 drops, the pilot and data
noise at the training SNR (20 dB in Fig. 5).

Schedules (``schedule``):

* ``"progressive"`` (Algorithm 1): ``N`` stages; stage ``n`` quantizes with tiers ``1..n``,
  trains tier ``n`` together with the pilots, extractor and EGAT (fine-tuned from stage
  ``n − 1``) and then freezes tier ``n``. Each stage runs ``epochs`` epochs with its own
  warm-up and cosine schedule and keeps its best validation weights.
* ``"e2e"``: all tiers trained jointly from the start for ``N x epochs`` epochs (the same
  number of updates).

User-count scalability (Section V-B, ``users`` given): every batch draws one ``K`` uniformly
from ``users`` and, for every drop, ``K`` of its users at random, so the one shared model sees
every ``K`` (a batch needs one ``K``; drawing it per batch is how "each training sample contains
randomly selected K users" becomes tensors). Validation then averages the sum rate over the
``K`` of ``users`` (the first ``K`` users of each validation drop).

With ``kmeans_init`` (default) a tier starts its stage at k-means centers of the current
residual features of training users instead of its small random initialization: with tiny
codewords the NSVQ noise is as large as the features themselves and the first epochs learn
little (a choice of ours; the paper does not say how it initializes its codebooks).

Every ``replace_every`` epochs the never-selected codewords of the tier being trained are
moved onto residuals of current training features (dead-code replacement, as the paper
authors' code does); frozen tiers are never touched. Validation is the mean sum rate on the
validation drops with hard quantization (eval mode) and fixed noise; the weights with the
best validation sum rate are kept. Every stage trains through the one engine
(:class:`chanlab.core.engine.Trainer`): a last batch too small for BatchNorm (one drop) joins the
one before it, and a run killed anywhere resumes exactly from its per-stage checkpoints (the
user-count generator of ``users`` included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import Trainer
from chanlab.core.engine import warmup_cosine as warmup_cosine_schedule
from chanlab.core.errors import ConfigError
from chanlab.metrics.rates import sum_rate
from chanlab.precoding.model import FddTransceiver, check_channels

SCHEDULES = ("progressive", "e2e")


@dataclass
class TransceiverTraining:
    """Hyper-parameters of one training run (defaults: the paper's, Section VI-C)."""

    epochs: int = 100             # per progressive stage; e2e runs n_tiers x epochs
    batch_size: int = 500
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup_epochs: int = 5
    snr_db: float = 20.0
    power: float = 1.0
    lam: float = 1.0
    replace_every: int = 10       # epochs between dead-code replacements (0: never)
    schedule: str = "progressive"
    users: tuple[int, ...] = ()   # random K per batch from this set (Sec. V-B); () = every user of the drops
    kmeans_init: bool = True      # start each tier at k-means centers of the current residual features

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule: expected one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not 0 < self.lr_min <= self.lr:
            raise ConfigError(f"lr_min: expected 0 < lr_min <= lr = {self.lr}, got {self.lr_min}")
        if self.power <= 0:
            raise ConfigError(f"power: expected > 0, got {self.power}")
        if any(int(k) < 1 for k in self.users):
            raise ConfigError(f"users: expected positive user counts, got {self.users}")

    @property
    def noise_power(self) -> float:
        return noise_power(self.snr_db, self.power)


def noise_power(snr_db: float, power: float = 1.0) -> float:
    """``σ² = P / 10^{SNR/10}`` (the paper's ``SNR = 10 log10(P / σ²)``)."""
    return float(power) / 10.0 ** (float(snr_db) / 10.0)


def warmup_cosine(step: int, total: int, warmup: int, lr: float, lr_min: float) -> float:
    """Learning rate at ``step`` of ``total``: linear warm-up over ``warmup`` steps, then cosine to
    ``lr_min`` (the engine's :func:`~chanlab.core.engine.warmup_cosine` with one step per "epoch")."""
    return lr * warmup_cosine_schedule(warmup, max(int(total), 1), min_ratio=lr_min / lr)(step, 0, 1)


def evaluate_sum_rate(precode: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor], h: torch.Tensor,
                      snr_db: float, power: float = 1.0, *, seed: int = 0, chunk: int = 2000) -> float:
    """Mean sum rate (bit/s/Hz) of ``precode(h_chunk, σ², generator) -> W`` on the drops ``h``.

    The noise generator is seeded with ``seed`` so that every scheme sees the same pilot noise.
    """
    sigma2 = noise_power(snr_db, power)
    gen = torch.Generator(device=h.device).manual_seed(int(seed))
    total = 0.0
    with torch.no_grad():
        for lo in range(0, h.shape[0], chunk):
            hc = h[lo:lo + chunk]
            w = precode(hc, sigma2, gen)
            total += float(sum_rate(hc, w, sigma2, check=False).sum())
    return total / h.shape[0]


def transceiver_sum_rate(model: FddTransceiver, h: torch.Tensor, snr_db: float, power: float = 1.0, *,
                         n_tiers: int | None = None, seed: int = 0) -> float:
    """Mean sum rate of the trained transceiver in eval mode (hard quantization)."""
    was = model.training
    model.eval()
    try:
        return evaluate_sum_rate(lambda hc, s2, g: model(hc, s2, power, n_tiers=n_tiers, generator=g)[0],
                                 h, snr_db, power, seed=seed)
    finally:
        model.train(was)


@dataclass
class StageHistory:
    stage: int
    n_tiers: int
    val_sum_rate: list[float]
    train_loss: list[float]
    best_epoch: int = -1
    replaced: int = 0


def _stage(model: torch.nn.Module, step: Callable[[torch.Tensor], torch.Tensor], validate: Callable[[], float],
           after_epoch: Callable[[int], int] | None, h_train: torch.Tensor, cfg: TransceiverTraining,
           n_epochs: int, seed: int, checkpointer: Checkpointer | None, desc: str, history: StageHistory,
           train_mode: Callable[[], Any] | None = None,
           generators: dict[str, torch.Generator] | None = None) -> None:
    """One run of warm-up + cosine Adam on ``step``'s loss through the engine, best-on-validation
    (highest sum rate) weights kept; fills ``history``.

    ``step(h_batch)`` returns the loss of the training drops ``h_batch``; ``after_epoch(epoch)``
    returns how many codewords it replaced; ``train_mode`` puts the model in its training mode
    before each epoch (default ``model.train()``); ``generators`` are the extra generators the
    steps draw from (checkpointed with the stage, so a resumed run draws the same numbers).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)

    def batch_step(idx: torch.Tensor) -> torch.Tensor:
        return step(h_train[idx.to(h_train.device)])

    def replaced(epoch: int) -> dict[str, float]:
        return {"replaced": after_epoch(epoch)}

    trainer = Trainer(model, opt, num_samples=h_train.shape[0], batch_size=cfg.batch_size, epochs=n_epochs,
                      step=batch_step, validate=validate, monitor="val_sum_rate", mode="max",
                      schedule=warmup_cosine_schedule(cfg.warmup_epochs, n_epochs, min_ratio=cfg.lr_min / cfg.lr),
                      seed=seed, checkpoint=checkpointer, after_epoch=replaced if after_epoch else None,
                      train_mode=train_mode, generators=generators, desc=desc)
    result = trainer.fit()
    history.val_sum_rate = list(result["val_sum_rate"])
    history.train_loss = list(result["train_loss"])
    history.best_epoch = result.best_epoch
    history.replaced = int(sum(result["replaced"]))


def train_transceiver(model: FddTransceiver, h_train: torch.Tensor, h_val: torch.Tensor, cfg: TransceiverTraining,
                      *, seed: int = 0, checkpoint: Callable[[str], Checkpointer] | None = None,
                      desc: str = "transceiver") -> list[StageHistory]:
    """Train ``model`` on drops ``h_train`` ``[n, K, M]`` (Algorithm 1 or E2E; module docstring).

    Returns one :class:`StageHistory` per stage (one for E2E). The model ends in eval mode
    with every tier frozen except under E2E.
    """
    check_channels(h_train, "h_train")
    check_channels(h_val, "h_val")
    _check_users(cfg, h_train, h_val)
    sigma2, power = cfg.noise_power, cfg.power
    user_gen = torch.Generator(device=h_train.device).manual_seed(int(seed) + 7)
    n_total = model.n_tiers
    if cfg.schedule == "progressive":
        stages = [(n, n, cfg.epochs) for n in range(1, n_total + 1)]
    else:
        stages = [(1, n_total, cfg.epochs * n_total)]
    histories = []
    for stage, n_tiers, n_epochs in stages:
        for q in model.quantizers:
            for t in range(n_total):
                trainable = (t == n_tiers - 1) if cfg.schedule == "progressive" else True
                (q.unfreeze_tier if trainable else q.freeze_tier)(t)

        def step(hb: torch.Tensor, n_tiers=n_tiers) -> torch.Tensor:
            hb = pick_users(hb, cfg.users, user_gen)
            w, q_loss = model(hb, sigma2, power, n_tiers=n_tiers)
            return -sum_rate(hb, w, sigma2, check=False).mean() + cfg.lam * q_loss

        def after_epoch(epoch: int, n_tiers=n_tiers, n_epochs=n_epochs) -> int:
            if not cfg.replace_every or (epoch + 1) % cfg.replace_every or epoch + 1 == n_epochs:
                return 0
            return replace_dead_codewords(model, h_train, n_tiers, cfg, seed + epoch)

        ckpt = checkpoint(f"{desc}-stage{stage}") if checkpoint else None
        if cfg.kmeans_init and (ckpt is None or not ckpt.exists()):
            new = [n_tiers - 1] if cfg.schedule == "progressive" else list(range(n_total))
            kmeans_init_tiers(model, h_train, new, cfg, seed + stage)
        history = StageHistory(stage=stage, n_tiers=n_tiers, val_sum_rate=[], train_loss=[])
        name = f"{desc} stage {stage}/{len(stages)}" if len(stages) > 1 else desc
        def validate(n_tiers=n_tiers) -> float:
            counts = cfg.users or (h_val.shape[1],)
            return sum(transceiver_sum_rate(model, h_val[:, :k], cfg.snr_db, power, n_tiers=n_tiers, seed=seed)
                       for k in counts) / len(counts)

        _stage(model, step, validate, after_epoch, h_train, cfg, n_epochs, seed + 1000 * stage,
               ckpt, name, history, generators={"users": user_gen})
        histories.append(history)
    if cfg.schedule == "progressive":
        for q in model.quantizers:
            for t in range(n_total):
                q.freeze_tier(t)
    return histories


def _check_users(cfg: TransceiverTraining, *hs: torch.Tensor) -> None:
    have = min(h.shape[1] for h in hs)
    if cfg.users and max(cfg.users) > have:
        raise ConfigError(f"users: the drops hold {have} users, cannot train with K = {max(cfg.users)}")


def pick_users(h: torch.Tensor, users: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """``h`` ``[b, K_max, M]`` -> ``[b, K, M]``: ``K`` drawn from ``users`` and ``K`` random users of
    each drop (``h`` itself when ``users`` is empty)."""
    if not users:
        return h
    k = int(users[int(torch.randint(len(users), (1,), generator=generator, device=generator.device))])
    order = torch.rand(h.shape[0], h.shape[1], generator=generator, device=generator.device).argsort(dim=1)[:, :k]
    return torch.gather(h, 1, order.to(h.device)[..., None].expand(-1, -1, h.shape[2]))


def _sample_features(model: FddTransceiver, h_train: torch.Tensor, cfg: TransceiverTraining,
                     gen: torch.Generator, n_samples: int) -> torch.Tensor:
    """Current features ``[n, K, D]`` (eval mode, no gradients): about ``n_samples`` random training
    users for each feedback module, so that each individual module's codebook is fitted on as many
    features as the shared one (its user slot sees one user per drop)."""
    users_per_module = max(1, h_train.shape[1] // model.n_slots)
    pick = torch.randperm(h_train.shape[0], generator=gen)[:max(1, n_samples // users_per_module)]
    was = model.training
    model.eval()
    with torch.no_grad():
        y = model.pilots(h_train[pick.to(h_train.device)], cfg.noise_power, cfg.power, generator=None)
        v = model.extract(y)
    model.train(was)
    return v


def kmeans_init_tiers(model: FddTransceiver, h_train: torch.Tensor, tiers: list[int], cfg: TransceiverTraining,
                      seed: int, n_samples: int = 8192, n_iter: int = 10) -> None:
    """Set each tier in ``tiers`` (in order) to k-means centers of the current residual features
    (after the tiers before it), so that a tier starts where the data is."""
    from chanlab.quant.vector import kmeans

    gen = torch.Generator().manual_seed(int(seed))
    v = _sample_features(model, h_train, cfg, gen, n_samples)
    for s, users in model._slots(v.shape[1]):
        q = model.quantizers[s]
        flat = v[:, users].reshape(-1, v.shape[-1])
        for t in tiers:
            with torch.no_grad():
                residual = flat - q.quantize(flat, n_tiers=t)[0] if t else flat
                k = min(1 << q.tier_bits[t], residual.shape[0])
                centers, _ = kmeans(residual, k, n_iter=n_iter, seed=seed + t)
                q.codebooks[t][:k] = centers.to(q.codebooks[t].dtype)


def replace_dead_codewords(model: FddTransceiver, h_train: torch.Tensor, n_tiers: int, cfg: TransceiverTraining,
                           seed: int, n_samples: int = 4096) -> int:
    """Move never-selected codewords of the trainable tiers onto residuals of current features
    (frozen tiers are left alone: later tiers were trained on their output)."""
    gen = torch.Generator().manual_seed(int(seed))
    v = _sample_features(model, h_train, cfg, gen, n_samples)
    replaced = 0
    for s, users in model._slots(v.shape[1]):
        counts = model.quantizers[s].replace_unused(v[:, users].reshape(-1, v.shape[-1]), n_tiers=n_tiers,
                                                    generator=gen)
        replaced += int(sum(counts))
    return replaced


def train_sum_rate_model(model: torch.nn.Module, h_train: torch.Tensor, h_val: torch.Tensor, cfg: TransceiverTraining,
                         *, seed: int = 0, checkpointer: Checkpointer | None = None,
                         desc: str = "model") -> StageHistory:
    """Train any ``model(h, σ², P) -> W`` on the negative sum rate (the learned baselines)."""
    check_channels(h_train, "h_train")
    sigma2, power = cfg.noise_power, cfg.power

    def step(hb: torch.Tensor) -> torch.Tensor:
        return -sum_rate(hb, model(hb, sigma2, power), sigma2, check=False).mean()

    def validate() -> float:
        model.eval()
        return evaluate_sum_rate(lambda hc, s2, g: model(hc, s2, power, generator=g), h_val, cfg.snr_db, power,
                                 seed=seed)

    history = StageHistory(stage=1, n_tiers=0, val_sum_rate=[], train_loss=[])
    _stage(model, step, validate, None, h_train, cfg, cfg.epochs, seed, checkpointer, desc, history)
    return history


def history_dict(histories: list[StageHistory]) -> list[dict[str, Any]]:
    return [dict(h.__dict__) for h in histories]


def train_expansion(model: FddTransceiver, extra_bits: list[int], h_train: torch.Tensor, h_val: torch.Tensor,
                    cfg: TransceiverTraining, *, seed: int = 0,
                    checkpoint: Callable[[str], Checkpointer] | None = None,
                    desc: str = "expansion") -> list[StageHistory]:
    """Codebook expansion for ``B_deploy > B`` (Section V-A-2): append ``extra_bits`` tiers to the
    shared RVQ and train them progressively, one stage per new tier, with the pilots, extractor,
    EGAT and earlier tiers frozen (eval mode: batch-norm statistics kept). ``cfg.epochs`` per
    stage. Returns one history per new tier; afterwards every tier is frozen and the other
    modules are trainable again.
    """
    if model.individual_feedback:
        raise ConfigError("expansion: the individual-feedback variant has one codebook per user; expand the "
                          "shared model")
    check_channels(h_train, "h_train")
    check_channels(h_val, "h_val")
    _check_users(cfg, h_train, h_val)
    old = model.n_tiers
    model.quantizers[0] = model.quantizer.expand(extra_bits, seed=seed + 101)
    others = [p for name, p in model.named_parameters() if not name.startswith("quantizers.")]
    for p in others:
        p.requires_grad_(False)
    sigma2, power = cfg.noise_power, cfg.power
    user_gen = torch.Generator(device=h_train.device).manual_seed(int(seed) + 11)

    def train_mode() -> None:
        model.eval()
        model.quantizer.train()

    histories = []
    try:
        for stage, tier in enumerate(range(old, model.n_tiers), start=1):
            for t in range(model.n_tiers):
                (model.quantizer.unfreeze_tier if t == tier else model.quantizer.freeze_tier)(t)

            def step(hb: torch.Tensor, n_tiers=tier + 1) -> torch.Tensor:
                hb = pick_users(hb, cfg.users, user_gen)
                w, q_loss = model(hb, sigma2, power, n_tiers=n_tiers)
                return -sum_rate(hb, w, sigma2, check=False).mean() + cfg.lam * q_loss

            def validate(n_tiers=tier + 1) -> float:
                counts = cfg.users or (h_val.shape[1],)
                return sum(transceiver_sum_rate(model, h_val[:, :k], cfg.snr_db, power, n_tiers=n_tiers, seed=seed)
                           for k in counts) / len(counts)

            def after_epoch(epoch: int, n_tiers=tier + 1) -> int:
                if not cfg.replace_every or (epoch + 1) % cfg.replace_every or epoch + 1 == cfg.epochs:
                    return 0
                return replace_dead_codewords(model, h_train, n_tiers, cfg, seed + epoch)

            ckpt = checkpoint(f"{desc}-tier{tier + 1}") if checkpoint else None
            if cfg.kmeans_init and (ckpt is None or not ckpt.exists()):
                kmeans_init_tiers(model, h_train, [tier], cfg, seed + 5000 + stage)
            history = StageHistory(stage=stage, n_tiers=tier + 1, val_sum_rate=[], train_loss=[])
            _stage(model, step, validate, after_epoch, h_train, cfg, cfg.epochs, seed + 5000 + stage, ckpt,
                   f"{desc} tier {tier + 1}", history, train_mode=train_mode, generators={"users": user_gen})
            histories.append(history)
    finally:
        for p in others:
            p.requires_grad_(True)
        for t in range(model.n_tiers):
            model.quantizer.freeze_tier(t)
        model.eval()
    return histories
