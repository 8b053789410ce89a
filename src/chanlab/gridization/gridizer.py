"""``ChannelSpaceGridizer``: fit CSG-AE on RSRP measurements, assign grids, predict RSRP (scikit-learn style)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from chanlab.channels.lscm import mw_to_dbm
from chanlab.core.checkpoint import Checkpointer, load_checkpoint, save_checkpoint
from chanlab.core.device import select_device
from chanlab.core.errors import CheckpointError, ConfigError, DataError
from chanlab.core.seeding import torch_generator
from chanlab.gridization.model import CsgAutoencoder
from chanlab.gridization.training import CsgHistory, CsgTraining, embed_all, train_csg

_FORMAT = "chanlab.gridization.v1"


def check_rsrp_dbm(rsrp_dbm, n_beams: int, name: str = "rsrp_dbm") -> torch.Tensor:
    """Validate beam-level RSRP in dBm: ``[n_samples, n_beams]``, finite, and not linear mW."""
    y = torch.as_tensor(rsrp_dbm)
    if y.is_complex() or not (y.is_floating_point() or y.dtype in (torch.int32, torch.int64)):
        raise DataError(f"{name}: expected real RSRP in dBm, got dtype {y.dtype}")
    if y.ndim != 2:
        raise DataError(f"{name}: expected [n_samples, n_beams = {n_beams}], got shape {tuple(y.shape)}")
    if y.shape[1] != n_beams:
        raise DataError(f"{name}: expected {n_beams} beams (the rows of the beam pattern A), got {y.shape[1]}")
    if y.shape[0] == 0:
        raise DataError(f"{name}: expected at least one sample")
    if not torch.isfinite(y).all():
        bad = int((~torch.isfinite(y)).any(1).sum())
        raise DataError(f"{name}: {bad} samples contain NaN or infinite values; drop or fill them first")
    if (y > 0).all():
        raise DataError(f"{name}: every value is positive ({float(y.min()):.3g} … {float(y.max()):.3g}); RSRP in dBm "
                        "is negative (reports span −156 … −31 dBm). These look like linear mW: convert them with "
                        "chanlab.channels.lscm.mw_to_dbm")
    return y.to(torch.float32)


class ChannelSpaceGridizer:
    """Channel Space Gridization with CSG-AE (gridization paper, Sections III–IV).

    Args:
        n_grids: K grids (codewords).
        sparsity: L nonzero angles per grid center.
        beam_pattern: A of the beams the RSRP was measured with, ``[M, N]`` (mW per unit CAPS;
            :class:`chanlab.channels.lscm.LscmPanel` builds one).
        training: a :class:`~chanlab.gridization.training.CsgTraining` (default: the paper's
            PIDA with 2000 + 2000 full-batch epochs).
        validation_fraction: share of the samples held out to pick the best weights.
        hidden, n_layers, skip_at: the encoder MLP.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        seed: initialization, validation split and shuffling.

    After :meth:`fit`: ``history_`` (:class:`CsgHistory`), ``labels_`` (grid of each fitted
    sample), ``grid_sizes_``. Shapes: RSRP ``[n, M]`` dBm; CAPS ``[n, N]`` linear.
    """

    def __init__(self, n_grids: int = 100, sparsity: int = 5, beam_pattern: torch.Tensor | None = None, *,
                 training: CsgTraining | None = None, validation_fraction: float = 0.1, hidden: int = 256,
                 n_layers: int = 6, skip_at: Sequence[int] = (2, 4), device: str | torch.device = "cpu",
                 seed: int = 0):
        if beam_pattern is None:
            raise ConfigError("beam_pattern: required, the [M, N] matrix A of the beams the RSRP was measured with")
        a = torch.as_tensor(beam_pattern)
        if a.ndim != 2 or not torch.isfinite(a).all() or (a < 0).any():
            raise DataError(f"beam_pattern: expected a finite nonnegative [M, N] matrix, got shape {tuple(a.shape)}")
        if not 1 <= sparsity < a.shape[0]:
            raise ConfigError(f"sparsity: Assumption 1 needs 1 <= L < M = {a.shape[0]}, got {sparsity}")
        if n_grids < 1:
            raise ConfigError(f"n_grids: expected >= 1, got {n_grids}")
        if not 0 < validation_fraction < 1:
            raise ConfigError(f"validation_fraction: expected in (0, 1), got {validation_fraction}")
        self.n_grids, self.sparsity = int(n_grids), int(sparsity)
        self.beam_pattern = a.to(torch.float64)
        self.training = training or CsgTraining()
        self.validation_fraction = validation_fraction
        self.hidden, self.n_layers, self.skip_at = hidden, n_layers, tuple(skip_at)
        self.device = select_device(device)
        self.seed = seed
        self.model: CsgAutoencoder | None = None
        self.history_: CsgHistory | None = None

    @property
    def n_beams(self) -> int:
        return self.beam_pattern.shape[0]

    def _build(self, caps_scale: float, mean: float, std: float) -> CsgAutoencoder:
        return CsgAutoencoder(self.beam_pattern, self.n_grids, self.sparsity, caps_scale=caps_scale, input_mean=mean,
                              input_std=std, hidden=self.hidden, n_layers=self.n_layers, skip_at=self.skip_at,
                              generator=torch_generator(self.seed)).to(self.device)

    def fit(self, rsrp_dbm, *, checkpoint: Callable[[str], Checkpointer] | None = None,
            snapshot: Callable[[str, CsgAutoencoder], None] | None = None,
            desc: str = "CSG-AE") -> ChannelSpaceGridizer:
        """Train CSG-AE on ``[n, M]`` RSRP (dBm) with ``self.training``; returns ``self``.

        ``checkpoint`` and ``snapshot`` are passed to :func:`~chanlab.gridization.training.train_csg`.
        """
        y = check_rsrp_dbm(rsrp_dbm, self.n_beams)
        n_val = max(1, round(self.validation_fraction * len(y)))
        if len(y) - n_val < self.n_grids:
            raise DataError(f"rsrp_dbm: {len(y)} samples leave {len(y) - n_val} for training, fewer than "
                            f"n_grids = {self.n_grids}")
        torch.manual_seed(self.seed)
        order = torch.randperm(len(y), generator=torch_generator(self.seed))
        y_val, y_train = y[order[:n_val]], y[order[n_val:]]
        self.model = self._build(1.0, float(y_train.mean()), float(y_train.std().clamp_min(1e-6)))
        self.model.calibrate_caps_scale(y_train.to(self.device))
        self.history_ = train_csg(self.model, y_train.to(self.device), y_val.to(self.device), self.training,
                                  seed=self.seed, checkpoint=checkpoint, snapshot=snapshot, desc=desc)
        self._summarize(y)
        return self

    @torch.no_grad()
    def _summarize(self, y: torch.Tensor) -> None:
        x = embed_all(self.model, y.to(self.device))
        self.labels_ = self.model.quantizer.assign(x).cpu()
        self.grid_sizes_ = torch.bincount(self.labels_, minlength=self.n_grids)
        sums = torch.zeros(self.n_grids, x.shape[1], dtype=torch.float64).index_add(0, self.labels_, x.double().cpu())
        self._grid_caps = sums / self.grid_sizes_.clamp_min(1)[:, None].double() * float(self.model.caps_scale)

    def _model(self) -> CsgAutoencoder:
        if self.model is None:
            raise ConfigError("ChannelSpaceGridizer: not fitted yet; call fit(rsrp_dbm) or load(path) first")
        return self.model

    @torch.no_grad()
    def embed(self, rsrp_dbm) -> torch.Tensor:
        """Estimated CAPS of each sample, ``[n, M] → [n, N]`` (linear, the units of A)."""
        model = self._model()
        y = check_rsrp_dbm(rsrp_dbm, self.n_beams).to(self.device)
        return (embed_all(model, y) * model.caps_scale).cpu().double()

    @torch.no_grad()
    def assign(self, rsrp_dbm) -> torch.Tensor:
        """Grid of each sample: ``[n, M] → [n]`` int64 (nearest codeword of its CAPS, eq. 22)."""
        model = self._model()
        y = check_rsrp_dbm(rsrp_dbm, self.n_beams).to(self.device)
        return model.quantizer.assign(embed_all(model, y)).cpu()

    @torch.no_grad()
    def grid_centers(self) -> torch.Tensor:
        """The L-sparse codewords ``Ξ[k]``, ``[K, N]`` linear CAPS."""
        model = self._model()
        return (model.quantizer.codewords() * model.caps_scale).cpu().double()

    def grid_caps(self) -> torch.Tensor:
        """Average CAPS of each grid over the fitted samples (eq. 30), ``[K, N]``; zero for empty grids."""
        self._model()
        return self._grid_caps.clone()

    def predict_rsrp(self, beam_pattern: torch.Tensor) -> torch.Tensor:
        """Average RSRP of each grid under another beam pattern (eq. 29): ``[M', N] → [K, M']`` dBm.

        A grid that no fitted sample was assigned to has no average CAPS (eq. 30 averages over its
        samples), so its row is −inf dBm: "no power predicted", which sorts below every real RSRP and
        drops out of a max over grids. ``grid_sizes_ > 0`` selects the grids with a prediction; the
        active ratio (``history_.active_ratio``) says how many there are.
        """
        a = torch.as_tensor(beam_pattern).to(torch.float64)
        if a.ndim != 2 or a.shape[1] != self.beam_pattern.shape[1]:
            raise DataError(f"beam_pattern: expected [M', N = {self.beam_pattern.shape[1]}] (same angular grid), "
                            f"got {tuple(a.shape)}")
        mw = self.grid_caps() @ a.T
        return torch.where(self.grid_sizes_[:, None] > 0, mw_to_dbm(mw), torch.tensor(float("-inf"), dtype=mw.dtype))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted gridizer (weights, settings, grid CAPS) atomically."""
        model = self._model()
        settings = {"n_grids": self.n_grids, "sparsity": self.sparsity, "validation_fraction": self.validation_fraction,
                    "hidden": self.hidden, "n_layers": self.n_layers, "skip_at": list(self.skip_at), "seed": self.seed}
        return save_checkpoint(path, {
            "format": _FORMAT, "settings": settings, "training": asdict(self.training),
            "beam_pattern": self.beam_pattern, "state": model.state_dict(), "labels": self.labels_,
            "grid_caps": self._grid_caps, "history": self.history_.to_dict() if self.history_ else {},
        })

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> ChannelSpaceGridizer:
        """Read a gridizer written by :meth:`save` (``weights_only`` loading)."""
        state = load_checkpoint(path)
        if state.get("format") != _FORMAT:
            raise CheckpointError(f"{path}: not a chanlab gridizer (format {state.get('format')!r})")
        s = state["settings"]
        g = cls(s["n_grids"], s["sparsity"], state["beam_pattern"], training=CsgTraining(**state["training"]),
                validation_fraction=s["validation_fraction"], hidden=s["hidden"], n_layers=s["n_layers"],
                skip_at=s["skip_at"], device=device, seed=s["seed"])
        st = state["state"]
        g.model = g._build(float(st["caps_scale"]), float(st["input_mean"]), float(st["input_std"]))
        g.model.load_state_dict(st)
        g.model.eval()
        g.labels_ = state["labels"]
        g.grid_sizes_ = torch.bincount(g.labels_, minlength=g.n_grids)
        g._grid_caps = state["grid_caps"]
        g.history_ = CsgHistory(**state["history"]) if state["history"] else None
        return g
