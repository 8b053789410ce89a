"""Two-stage residual-CNN baseline: AP clustering first, then beamforming for the clustered APs.

This is the "CNNs with imperfect CSI" baseline of the cell-free paper
(``cellfree-robust-ap-clustering.txt``, Sec. V). That baseline is ref. [16]: Y. He, L. Dai and
H. Zhang, "Multi-branch deep residual learning for clustering and beamforming in user-centric
network", IEEE Commun. Lett. 24(10), 2020. The paper describes it in one sentence: "[16]
applies the CNNs to implement AP clustering and beamforming design with perfect CSI
individually, i.e., AP clustering is determined and beamforming is then designed from the
clustered APs. Similarly, the CNNs in [16] is utilized to imperfect CSI scenarios." Its Table II
gives the multiplication count ``Q I (36 M C + 38 K M C^2 + L L_l + (2M + 1) O O_o)``
(:func:`chanlab.classical.wmmse.multiplication_count_cnn`). Ref. [16] itself was not
available, so this module is a documented stand-in built from those two statements and the
paper's system model, not a re-implementation of [16].

**System model** (Sec. II). ``Q`` APs with ``M`` antennas serve ``I`` single-antenna users.
CSI and beamformers are ``[batch, I, Q, M]`` complex (:mod:`chanlab.channels.cellfree`), the
rate is Eq. (1)-(3) (:mod:`chanlab.metrics.rates`), and every AP has the budget
``sum_i ||v_i^q||^2 <= P_max`` (C1 of Eq. 7). Blocks of unclustered links are zero (C2).

**Stage 1, AP clustering.** A residual CNN reads the CSI modulus on the ``Q x I`` grid, one
input channel per antenna: ``[B, M, Q, I]`` with entry ``log10(P_max |h_i^q[m]|^2 / sigma^2)``,
the per-antenna link SNR in bels, floored at -10. It outputs one logit per (AP, user) link; the
serving probability is its sigmoid. At inference the mask is hard: link ``(q, i)`` is served
when the probability exceeds ``threshold`` (0.5), and each user's strongest AP (largest
``||h_i^q||``) is always served, so no user is left without an AP.

The branch is trained *supervised*, against a fixed rule, and before and apart from the
beamforming branch (the "individually" of the paper):

* **Rule (label).** User ``i`` is served by the smallest set of APs whose channel gains
  ``||h_i^q||^2`` add up to at least ``cluster_fraction`` of its total gain
  ``sum_q ||h_i^q||^2``: the APs are taken in decreasing order of gain
  (:func:`gain_fraction_clusters`). This is the usual "dominant APs" rule of user-centric
  cell-free networks. The training function receives CSI only, so the rule uses the
  instantaneous gain of the (estimated) CSI the design sees, not ``beta``;
  :func:`gain_fraction_clusters` also accepts ``beta`` for other uses.
* **Default fraction.** ``cluster_fraction = 0.99``. With the paper's sizes
  (``Q = I = 16``, ``M = 4``, 1 km area, 8 dB shadowing, 2000 drops) the rule serves on
  average 3.6, 4.8, 8.0 and 12.0 APs per user at fractions 0.9, 0.95, 0.99 and 0.999. The
  paper reports the CNNs' ``Q_ave`` above RJAPCBN's (about 10 of 16, Table I), so experiments
  matching Fig. 6 may raise the fraction.
* **Loss.** Binary cross-entropy between the logits and the rule's labels.

**Stage 2, beamforming** on the masked CSI. A second residual CNN reads, per link, the
``2M + 2`` channels ``[Re d, Im d, g, a]`` on the ``Q x I`` grid, where ``a`` is the stage-1
mask (0/1), ``d = a h_i^q / ||h_i^q||`` is the masked channel direction and
``g = a log10(P_max ||h_i^q||^2 / sigma^2)`` the masked link SNR in bels. The output has
``2M + 1`` channels per link: the real and imaginary parts of a correction ``c_i^q`` and a
log-amplitude ``s_i^q``. A skip connection carries the masked CSI itself, scaled per AP::

    u_i^q = exp(r tanh(s_i^q / r)) h_i^q / max_{j served by q} ||h_j^q||  +  c_i^q,   r = 10

The last layer of every beamforming branch starts at zero, so the untrained branch is exactly
per-AP maximum-ratio transmission (MRT) on the cluster at full power, and training learns the
residual: a per-link power allocation (``s``, bounded so it cannot overflow) and a direction
correction (``c``). Then:

* ``v_i^q = sqrt(P_max) a_i^q u_i^q``: blocks outside the cluster are *exactly* zero (a
  ``where``, not a product with a soft value);
* per-AP power projection: an AP whose power exceeds ``P_max`` is scaled down onto it
  (:func:`chanlab.classical.wmmse.project_per_ap_power`, with its rounding margin, so C1 holds in
  the working precision); an AP within budget is left as is.

The branch is trained *unsupervised* on the nominal sum rate ``-mean_b sum_i R_i`` computed
on the CSI it is given, with the stage-1 branch frozen and its *hard* mask. Like [16] it is a
perfect-CSI design: with imperfect CSI it simply treats ``h_hat`` as the channel, which is
how the paper runs it.

**Multi-branch.** Each residual CNN is a stem (``k x k`` conv, BN, ReLU), ``n_blocks``
residual blocks (conv-BN-ReLU-conv-BN plus identity, ReLU; He et al. 2016) and pointwise
output branches. Table II's ``(2M + 1) O O_o`` term is read as ``2M + 1`` output branches of
``O`` layers of ``O_o`` neurons applied at every grid point. Here those are the ``2M + 1``
beamforming branches (one per antenna and real/imaginary part of the correction, and one for
the amplitude), which share the stage-2 trunk; the clustering network has its own trunk and
a single branch. Each branch is ``head_layers`` pointwise (1 x 1) layers of width
``head_width``.

Simplifications, all choices of this stand-in:

* The CNNs convolve over the ``Q x I`` (AP x user) grid with antennas as channels, as the
  paper's own networks do, with "same" zero padding. Table II's ``L L_l`` term (fully
  connected layers with ``L_l = Q I M`` neurons) is left out: this model has no fully
  connected layer, and context comes from the depth of the residual trunk: its receptive
  field is ``(1 + 2 n_blocks)(k - 1) + 1`` grid points wide (:meth:`TwoStageCNN.receptive_field`),
  19 with the defaults, which covers the paper's 16 x 16 grid.
* The clustering labels come from the fixed rule above, not from an optimiser; the two
  branches are trained one after the other, never jointly.
* The input features are logarithmic SNRs and unit directions rather than the raw CSI,
  because raw cell-free channel entries span many orders of magnitude. The SNR reference
  ``P_max / sigma^2`` is a buffer of the model; :func:`train_two_stage_cnn` sets it to the noise
  power it trains with (:meth:`TwoStageCNN.set_noise_power`).
* Defaults are small (``channels=16``, ``n_blocks=4``, ``head_layers=2``, ``head_width=32``,
  ``3 x 3`` kernels) so that CPU training is quick. Table II's values for [16] are
  ``C = 16``, ``K = 10``, ``L = 8``, ``O = 3``, ``O_o = 80``.

**Complexity.** :meth:`TwoStageCNN.multiplication_count` counts the real multiplications of one
forward pass for one drop analytically, to sit beside Table II. A convolution costs
``H W (C_in / groups) C_out k^2`` with ``H x W = Q x I``; batch normalisation is folded into the
preceding convolution at inference (0); biases, ReLU, comparisons and logarithms are not
multiplications; a 0/1 mask is a selection (0); a reciprocal square root counts as one.
:meth:`TwoStageCNN.multiplication_breakdown` lists the parts.

Typical use::

    sigma2 = noise_power_for_snr(10.0)
    train = generate_cellfree(10000, error_level=0.1, seed=1)
    val = generate_cellfree(1000, error_level=0.1, seed=2)
    test = generate_cellfree(6400, error_level=0.1, seed=3)
    model = TwoStageCNN(16, 4, 16)
    history = train_two_stage_cnn(model, train.h_hat, val.h_hat, sigma2, epochs=50,
                                  batch_size=64, lr=1e-3, seed=0)
    v = predict_beamformers(model, test.h_hat)        # designed on the estimate
    rate = sum_rate(test.h, v, sigma2)                # evaluated on the true channel
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from chanlab.classical.wmmse import project_per_ap_power as _project_per_ap, average_serving_aps
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import Trainer
from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import check_complex, check_finite, check_int_range, check_ndim
from chanlab.metrics.rates import sum_rate

#: Floor of the logarithmic input features, in bels (-100 dB SNR); keeps log(0) out.
FEATURE_FLOOR = -10.0
#: The learned link amplitude is ``exp(r tanh(a / r))`` with this ``r``: within ``e^(+-10)``,
#: so it cannot overflow, and ``exp(a)`` near ``a = 0``.
LOG_AMPLITUDE_RANGE = 10.0


# ----------------------------------------------------------------------------------------------
# Clustering rule
# ----------------------------------------------------------------------------------------------


def link_gains(h: torch.Tensor) -> torch.Tensor:
    """Per-link channel gain ``||h_i^q||^2`` of ``[B, I, Q, M]`` complex CSI: ``[B, I, Q]`` real."""
    return (h.real.square() + h.imag.square()).sum(-1)


def gain_fraction_clusters(gain: torch.Tensor, fraction: float) -> torch.Tensor:
    """The clustering rule: each user's smallest set of strongest APs holding ``fraction`` of its gain.

    For user ``i`` the APs are sorted by decreasing gain; AP ``q`` serves ``i`` when the gain
    of the APs strictly stronger than it is still below ``fraction * sum_q gain_i^q``. The
    strongest AP therefore always serves, and ``fraction = 1`` serves every AP with a
    positive gain (ties are broken by the sort order).

    Args:
        gain: ``[B, I, Q]`` real gains (e.g. ``beta`` or :func:`link_gains`), or
            ``[B, I, Q, M]`` complex CSI, whose :func:`link_gains` are used.
        fraction: in ``(0, 1]``.

    Returns:
        ``[B, I, Q]`` bool serving mask.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not (0.0 < fraction <= 1.0):
        raise ConfigError(f"fraction: expected a number in (0, 1], got {fraction!r}")
    if gain.is_complex():
        check_ndim(gain, 4, "gain", "[batch, n_users, n_aps, n_ant] complex CSI")
        gain = link_gains(gain)
    else:
        check_ndim(gain, 3, "gain", "[batch, n_users, n_aps] real gains")
        if not gain.is_floating_point():
            raise DataError(f"gain: expected real floating gains or complex CSI, got dtype {gain.dtype}")
    g, order = gain.sort(-1, descending=True)
    total = g.sum(-1, keepdim=True)
    before = g.cumsum(-1) - g  # gain of the strictly stronger APs
    keep_sorted = before < fraction * total
    keep_sorted[..., 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


# ----------------------------------------------------------------------------------------------
# Network blocks
# ----------------------------------------------------------------------------------------------


class _ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus identity, then ReLU; "same" padding, ``C -> C``."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class MultiBranchResidualCNN(nn.Module):
    """Residual CNN trunk with ``n_branches`` pointwise output branches, ``[B, c_in, H, W]`` in.

    Stem (``k x k`` conv ``c_in -> channels``, BN, ReLU), ``n_blocks`` residual blocks, then
    ``n_branches`` branches of ``head_layers`` pointwise layers each (width ``head_width``,
    ReLU between, one output channel per branch). The branches run side by side as grouped
    ``1 x 1`` convolutions. Output: ``[B, n_branches, H, W]``. With ``zero_output`` the last
    layer starts at zero, so the untrained network outputs zeros.
    """

    def __init__(self, c_in: int, channels: int, n_blocks: int, kernel: int, n_branches: int,
                 head_layers: int, head_width: int, zero_output: bool = False):
        super().__init__()
        self.c_in, self.channels, self.n_blocks, self.kernel = c_in, channels, n_blocks, kernel
        self.n_branches, self.head_layers, self.head_width = n_branches, head_layers, head_width
        self.stem = nn.Sequential(nn.Conv2d(c_in, channels, kernel, padding=kernel // 2),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        self.blocks = nn.Sequential(*[_ResidualBlock(channels, kernel) for _ in range(n_blocks)])
        n, w = n_branches, head_width
        if head_layers == 1:
            layers: list[nn.Module] = [nn.Conv2d(channels, n, 1)]
        else:
            layers = [nn.Conv2d(channels, n * w, 1), nn.ReLU()]
            for _ in range(head_layers - 2):
                layers += [nn.Conv2d(n * w, n * w, 1, groups=n), nn.ReLU()]
            layers.append(nn.Conv2d(n * w, n, 1, groups=n))
        if zero_output:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.heads = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.blocks(self.stem(x)))

    def multiplications(self, height: int, width: int) -> int:
        """Real multiplications of one forward pass on one ``height x width`` input (BN folded)."""
        hw, c, kk = height * width, self.channels, self.kernel ** 2
        n, w = self.n_branches, self.head_width
        stem = hw * self.c_in * c * kk
        blocks = self.n_blocks * 2 * hw * c * c * kk
        if self.head_layers == 1:
            heads = hw * c * n
        else:
            heads = hw * (n * c * w + (self.head_layers - 2) * n * w * w + n * w)
        return stem + blocks + heads


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoStageCNNSpec:
    """Architecture and fixed settings of a :class:`TwoStageCNN` (see the module docstring)."""

    n_aps: int
    n_ant: int
    n_users: int
    channels: int = 16
    n_blocks: int = 4
    kernel: int = 3
    head_layers: int = 2
    head_width: int = 32
    p_max: float = 1.0
    cluster_fraction: float = 0.99
    threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("n_aps", "n_ant", "n_users", "channels", "kernel", "head_layers", "head_width"):
            check_int_range(getattr(self, name), name, low=1, error=ConfigError)
        check_int_range(self.n_blocks, "n_blocks", low=0, error=ConfigError)
        if self.kernel % 2 == 0:
            raise ConfigError(f"kernel: expected an odd size (for 'same' padding), got {self.kernel}")
        if not (isinstance(self.p_max, (int, float)) and math.isfinite(self.p_max) and self.p_max > 0):
            raise ConfigError(f"p_max: expected a finite number > 0, got {self.p_max!r}")
        if not (isinstance(self.cluster_fraction, (int, float)) and 0 < self.cluster_fraction <= 1):
            raise ConfigError(f"cluster_fraction: expected a number in (0, 1], got {self.cluster_fraction!r}")
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise ConfigError(f"threshold: expected a number in (0, 1), got {self.threshold!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_noise_power(noise_power: float) -> float:
    if isinstance(noise_power, bool) or not isinstance(noise_power, (int, float)) \
            or not math.isfinite(noise_power) or noise_power <= 0:
        raise ConfigError(f"noise_power: expected a finite number > 0, got {noise_power!r}")
    return float(noise_power)


class TwoStageCNN(nn.Module):
    """AP clustering CNN, then a multi-branch beamforming CNN on the masked CSI ([16] stand-in).

    Args:
        n_aps, n_ant, n_users: ``Q``, ``M`` and ``I``.
        channels: convolution channels ``C`` of both residual trunks.
        n_blocks: residual blocks per trunk.
        kernel: odd convolution kernel size ``k``.
        head_layers, head_width: layers and width of every pointwise output branch.
        p_max: per-AP power budget ``P_max``.
        noise_power: ``sigma^2`` of the SNR features (see :meth:`set_noise_power`).
        cluster_fraction: fraction of each user's gain its clustering labels hold
            (:func:`gain_fraction_clusters`).
        threshold: serving-probability threshold of the hard mask.

    ``forward(h)`` takes ``[B, I, Q, M]`` complex CSI and returns a dict:

    * ``"v"``: ``[B, I, Q, M]`` beamformers in ``h``'s complex dtype, zero outside the mask,
      every AP within ``P_max``;
    * ``"mask"``: ``[B, I, Q]`` bool hard clustering;
    * ``"prob"`` and ``"logits"``: ``[B, I, Q]`` serving probabilities and their logits.
    """

    def __init__(self, n_aps: int, n_ant: int, n_users: int, *, channels: int = 16,
                 n_blocks: int = 4, kernel: int = 3, head_layers: int = 2, head_width: int = 32,
                 p_max: float = 1.0, noise_power: float = 1.0, cluster_fraction: float = 0.99,
                 threshold: float = 0.5):
        super().__init__()
        self.spec = TwoStageCNNSpec(n_aps, n_ant, n_users, channels, n_blocks, kernel, head_layers,
                                    head_width, float(p_max), float(cluster_fraction), float(threshold))
        m = n_ant
        self.cluster_net = MultiBranchResidualCNN(m, channels, n_blocks, kernel, 1, head_layers, head_width)
        self.beam_net = MultiBranchResidualCNN(2 * m + 2, channels, n_blocks, kernel, 2 * m + 1,
                                               head_layers, head_width, zero_output=True)
        # log10(P_max / sigma^2): the SNR reference of the features, saved with the weights.
        self.register_buffer("log_snr_ref", torch.zeros((), dtype=torch.float64))
        self.set_noise_power(noise_power)

    @classmethod
    def from_spec(cls, spec: TwoStageCNNSpec | dict, noise_power: float = 1.0) -> "TwoStageCNN":
        d = spec.to_dict() if isinstance(spec, TwoStageCNNSpec) else dict(spec)
        q, m, i = d.pop("n_aps"), d.pop("n_ant"), d.pop("n_users")
        return cls(q, m, i, noise_power=noise_power, **d)

    # --- settings ---------------------------------------------------------------------------

    def set_noise_power(self, noise_power: float) -> None:
        """Reference the SNR input features to ``noise_power`` (``sigma^2``)."""
        sigma2 = _check_noise_power(noise_power)
        self.log_snr_ref.fill_(math.log10(self.spec.p_max / sigma2))

    @property
    def noise_power(self) -> float:
        return self.spec.p_max / 10.0 ** float(self.log_snr_ref)

    def receptive_field(self) -> int:
        """Side of each trunk's receptive field, in grid points (``(1 + 2 n_blocks)(k-1) + 1``)."""
        return (1 + 2 * self.spec.n_blocks) * (self.spec.kernel - 1) + 1

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _check_h(self, h: torch.Tensor) -> None:
        if not isinstance(h, torch.Tensor):
            raise DataError(f"h: expected a torch.Tensor, got {type(h).__name__}")
        check_complex(h, "h")
        check_ndim(h, 4, "h", "[batch, n_users, n_aps, n_ant]")
        s = self.spec
        if tuple(h.shape[1:]) != (s.n_users, s.n_aps, s.n_ant):
            raise DataError(f"h: expected shape [batch, n_users={s.n_users}, n_aps={s.n_aps}, "
                            f"n_ant={s.n_ant}], got {list(h.shape)}")

    def _log_snr(self, power: torch.Tensor) -> torch.Tensor:
        ref = self.log_snr_ref.to(power.dtype)
        return (torch.log10(power.clamp_min(torch.finfo(power.dtype).tiny)) + ref).clamp_min(FEATURE_FLOOR)

    # --- stage 1 ----------------------------------------------------------------------------

    def cluster_features(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, M, Q, I]`` log per-antenna SNR ``log10(P_max |h_i^q[m]|^2 / sigma^2)``, floored."""
        self._check_h(h)
        power = (h.real.square() + h.imag.square()).to(self._dtype())  # [B, I, Q, M]
        return self._log_snr(power).permute(0, 3, 2, 1)

    def cluster_logits(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, I, Q]`` serving logits of the clustering branch."""
        return self.cluster_net(self.cluster_features(h))[:, 0].transpose(1, 2)

    def cluster_targets(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, I, Q]`` bool labels of the clustering rule (:func:`gain_fraction_clusters`)."""
        self._check_h(h)
        return gain_fraction_clusters(h, self.spec.cluster_fraction)

    def hard_mask(self, h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``[B, I, Q]`` bool: probability above ``threshold``, or the user's strongest AP."""
        t = self.spec.threshold
        mask = logits > math.log(t / (1.0 - t))
        strongest = link_gains(h).argmax(-1, keepdim=True)
        return mask.scatter(-1, strongest.to(mask.device), True)

    # --- stage 2 ----------------------------------------------------------------------------

    def beam_features(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, 2M + 2, Q, I]``: masked directions (real, imaginary), masked log SNR, the mask."""
        self._check_h(h)
        dtype = self._dtype()
        gain = link_gains(h).to(dtype)  # [B, I, Q]
        a = mask.to(dtype)
        inv = torch.rsqrt(gain.clamp_min(torch.finfo(dtype).tiny)) * a
        d = h.to(torch.complex64 if dtype == torch.float32 else torch.complex128) * inv.unsqueeze(-1)
        snr = self._log_snr(gain) * a
        x = torch.cat([d.real, d.imag, snr.unsqueeze(-1), a.unsqueeze(-1)], -1)  # [B, I, Q, 2M+2]
        return x.permute(0, 3, 2, 1)

    def beamformers(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, I, Q, M]`` beamformers for the clustering ``mask`` ``[B, I, Q]`` (bool)."""
        if mask.dtype != torch.bool or tuple(mask.shape) != tuple(h.shape[:3]):
            raise DataError(f"mask: expected a bool tensor of shape {list(h.shape[:3])}, "
                            f"got {mask.dtype} {list(mask.shape)}")
        m = self.spec.n_ant
        out = self.beam_net(self.beam_features(h, mask)).permute(0, 3, 2, 1)  # [B, I, Q, 2M + 1]
        correction = torch.complex(out[..., :m], out[..., m:2 * m]).to(h.dtype)
        r = LOG_AMPLITUDE_RANGE
        amplitude = torch.exp(r * torch.tanh(out[..., 2 * m] / r))  # [B, I, Q], 1 when untrained
        # Skip: per-AP MRT, each AP's strongest served link scaled to unit norm.
        gain = torch.where(mask, link_gains(h), 0.0)
        inv = torch.rsqrt(gain.amax(1, keepdim=True).clamp_min(torch.finfo(gain.dtype).tiny))  # [B, 1, Q]
        u = h * (inv * amplitude.to(inv.dtype)).unsqueeze(-1) + correction
        zero = torch.zeros((), dtype=h.dtype, device=h.device)
        v = torch.where(mask.unsqueeze(-1), u * math.sqrt(self.spec.p_max), zero)
        return _project_per_ap(v, self.spec.p_max)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.cluster_logits(h)
        mask = self.hard_mask(h, logits.detach())
        return {"v": self.beamformers(h, mask), "mask": mask, "prob": torch.sigmoid(logits),
                "logits": logits}

    # --- complexity -------------------------------------------------------------------------

    def multiplication_breakdown(self) -> dict[str, int]:
        """Real multiplications of one forward pass for one drop, by part (module docstring rules).

        * ``cluster_features``: ``|h_i^q[m]|^2``, 2 per complex entry: ``2 Q I M``.
        * ``cluster_cnn``: stage-1 trunk and its branch on the ``Q x I`` grid.
        * ``beam_features``: one reciprocal square root per link and ``2M`` products for the
          unit direction: ``Q I (2M + 1)`` (the link gains reuse the squared moduli).
        * ``beam_cnn``: stage-2 trunk and its ``2M + 1`` branches.
        * ``beam_skip``: the amplitude ``exp(r tanh(a / r))`` (2 per link), one reciprocal
          square root per AP, its product with the amplitude (1 per link) and the scaled CSI
          (``2M`` per link): ``Q + 3 Q I + 2 Q I M``.
        * ``power_projection``: scaling by ``sqrt(P_max)`` (``2 Q I M``), AP powers
          (``2 Q I M``), one factor per AP (``Q``), applying it (``2 Q I M``).
        """
        s = self.spec
        q, i, m = s.n_aps, s.n_users, s.n_ant
        return {
            "cluster_features": 2 * q * i * m,
            "cluster_cnn": self.cluster_net.multiplications(q, i),
            "beam_features": q * i * (2 * m + 1),
            "beam_cnn": self.beam_net.multiplications(q, i),
            "beam_skip": q + 3 * q * i + 2 * q * i * m,
            "power_projection": 6 * q * i * m + q,
        }

    def multiplication_count(self) -> int:
        """Total real multiplications of one forward pass for one drop (compare with Table II)."""
        return int(sum(self.multiplication_breakdown().values()))


# ----------------------------------------------------------------------------------------------
# Inference helpers
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def predict_beamformers(model: TwoStageCNN, h: torch.Tensor, batch_size: int = 256,
                        return_mask: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode beamformers ``[B, I, Q, M]`` for CSI ``h`` (returned on ``h``'s device).

    With ``return_mask`` also the hard clustering ``[B, I, Q]``.
    """
    check_int_range(batch_size, "batch_size", low=1, error=ConfigError)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    device = next(model.parameters()).device
    vs, masks = [], []
    try:
        for k in range(0, h.shape[0], batch_size):
            out = model(h[k:k + batch_size].to(device))
            vs.append(out["v"].to(h.device))
            masks.append(out["mask"].to(h.device))
    finally:
        for m, mode in modes:
            m.training = mode
    v = torch.cat(vs) if vs else torch.zeros_like(h)
    if return_mask:
        return v, (torch.cat(masks) if masks else torch.zeros(h.shape[:3], dtype=torch.bool))
    return v


@torch.no_grad()
def _cluster_metrics(model: TwoStageCNN, h: torch.Tensor, targets: torch.Tensor,
                     batch_size: int) -> tuple[float, float]:
    """Eval-mode mean BCE and label accuracy of the clustering branch."""
    device = next(model.parameters()).device
    loss = correct = 0.0
    for k in range(0, h.shape[0], batch_size):
        hb, tb = h[k:k + batch_size].to(device), targets[k:k + batch_size].to(device)
        logits = model.cluster_logits(hb)
        loss += float(F.binary_cross_entropy_with_logits(logits, tb.to(logits.dtype), reduction="sum"))
        correct += float((model.hard_mask(hb, logits) == tb).sum())
    n = targets.numel()
    return loss / n, correct / n


@torch.no_grad()
def evaluate_sum_rate(model: TwoStageCNN, h_design: torch.Tensor, noise_power: float, *,
                      h_true: torch.Tensor | None = None, batch_size: int = 256) -> dict[str, float]:
    """Mean sum rate and ``N_ave`` of the eval-mode design on ``h_design``.

    The rate is measured on ``h_true`` when given (imperfect CSI treated as perfect), else on
    ``h_design`` (the nominal rate).
    """
    v = predict_beamformers(model, h_design, batch_size)
    target = h_design if h_true is None else h_true
    rate = sum_rate(target, v.to(target.device), noise_power)
    return {"sum_rate": float(rate.mean()), "n_ave": float(average_serving_aps(v).mean())}


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


@dataclass
class TwoStageHistory:
    """Per-epoch losses of both stages.

    Stage 1: mean training BCE, validation BCE and validation label accuracy. Stage 2: mean
    training and validation nominal sum rate (bit/s/Hz per drop). ``best_*`` are the epochs
    whose weights were kept.
    """

    cluster_train_loss: list[float] = field(default_factory=list)
    cluster_val_loss: list[float] = field(default_factory=list)
    cluster_val_accuracy: list[float] = field(default_factory=list)
    train_rate: list[float] = field(default_factory=list)
    val_rate: list[float] = field(default_factory=list)
    best_cluster_epoch: int = -1
    best_epoch: int = -1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _check_csi(h: torch.Tensor, name: str, model: TwoStageCNN) -> None:
    if not isinstance(h, torch.Tensor):
        raise DataError(f"{name}: expected a torch.Tensor, got {type(h).__name__}")
    try:
        model._check_h(h)
    except DataError as exc:
        raise DataError(f"{name}: {str(exc).removeprefix('h: ')}") from None
    if h.shape[0] < 1:
        raise DataError(f"{name}: expected at least one drop, got shape {list(h.shape)}")
    check_finite(h, name)


def train_two_stage_cnn(model: TwoStageCNN, h_train: torch.Tensor, h_val: torch.Tensor | None,
                        noise_power: float, epochs: int = 50, batch_size: int = 64, lr: float = 1e-3,
                        seed: int = 0, checkpointer: Checkpointer | None = None, *,
                        cluster_epochs: int | None = None, cluster_lr: float | None = None,
                        desc: str = "two-stage CNN") -> TwoStageHistory:
    """Train both stages in place: clustering first (supervised), then beamforming (unsupervised).

    1. ``cluster_epochs`` epochs (default ``epochs``) of Adam on the BCE between the clustering
       logits and the rule's labels (:meth:`TwoStageCNN.cluster_targets` of ``h_train``); the
       weights with the lowest validation BCE are kept.
    2. ``epochs`` epochs of Adam on ``-mean sum rate`` of :func:`chanlab.metrics.rates.sum_rate`
       on ``h_train`` itself, with the clustering branch frozen (eval mode) and its hard mask;
       the weights with the highest validation sum rate are kept.

    The CSI given is treated as perfect, as [16] is a perfect-CSI design: pass the estimates
    ``h_hat`` for the paper's "CNNs with imperfect CSI".

    Args:
        model: the network, on the device to train on (CPU or CUDA); the data may stay on the
            CPU and is moved batch by batch.
        h_train, h_val: ``[N, I, Q, M]`` complex CSI. ``h_val=None`` keeps the last epochs.
        noise_power: ``sigma^2`` of the rate; also becomes the model's feature reference
            (:meth:`TwoStageCNN.set_noise_power`).
        epochs, batch_size, lr: beamforming epochs, mini-batch size and Adam learning rate.
            Both stages train through :class:`chanlab.core.engine.Trainer`, whose minimum batch
            for these BatchNorm networks is 2: a last batch of one drop joins the batch before
            it, and a training set of a single drop is a ConfigError.
        seed: seed of the shuffling generator (the weights' initialisation is the caller's).
        checkpointer: saves the state of either stage on its cadence (``every_epochs`` /
            ``every_seconds``), at the end and on Ctrl-C, and resumes from it exactly (the
            clustering stage in ``<name>-clustering.pt`` beside the checkpointer's file, on the
            same cadence).
        cluster_epochs, cluster_lr: epochs and learning rate of stage 1 (defaults: ``epochs``,
            ``lr``).

    Returns:
        The history; ``model`` holds the kept weights and is in eval mode on return.
    """
    n_cluster = epochs if cluster_epochs is None else cluster_epochs
    c_lr = lr if cluster_lr is None else cluster_lr
    check_int_range(epochs, "epochs", low=1, error=ConfigError)
    check_int_range(n_cluster, "cluster_epochs", low=0, error=ConfigError)
    check_int_range(batch_size, "batch_size", low=1, error=ConfigError)
    check_int_range(seed, "seed", low=0, error=ConfigError)
    for name, value in (("lr", lr), ("cluster_lr", c_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
            raise ConfigError(f"{name}: expected a finite number > 0, got {value!r}")
    sigma2 = _check_noise_power(noise_power)
    _check_csi(h_train, "h_train", model)
    if h_val is not None:
        _check_csi(h_val, "h_val", model)
    model.set_noise_power(sigma2)

    device = next(model.parameters()).device
    n = h_train.shape[0]
    # Each stage is its own resumable Trainer run (own optimizer, best weights and checkpoint
    # file); the clustering stage's file sits beside the caller's, saved on the same cadence.
    cluster_ckpt = None if checkpointer is None else Checkpointer(
        checkpointer.folder, name=f"{checkpointer.path.stem}-clustering.pt",
        every_epochs=checkpointer.every_epochs, every_seconds=checkpointer.every_seconds)

    # Stage 1: clustering, supervised against the rule.
    targets: dict[str, torch.Tensor] = {}

    def cluster_step(idx: torch.Tensor) -> torch.Tensor:
        hb, tb = h_train[idx].to(device), targets["train"][idx].to(device)
        logits = model.cluster_logits(hb)
        return F.binary_cross_entropy_with_logits(logits, tb.to(logits.dtype))

    def cluster_validate() -> dict[str, float]:
        model.cluster_net.eval()
        val_loss, val_acc = _cluster_metrics(model, h_val, targets["val"], max(batch_size, 256))
        return {"val_loss": val_loss, "val_accuracy": val_acc}

    stage1 = Trainer(model.cluster_net, torch.optim.Adam(model.cluster_net.parameters(), lr=c_lr), num_samples=n,
                     batch_size=batch_size, epochs=n_cluster, step=cluster_step,
                     validate=None if h_val is None else cluster_validate, monitor="val_loss", mode="min",
                     seed=seed, checkpoint=cluster_ckpt, desc=f"{desc} clustering")
    if stage1.start_epoch < n_cluster:  # the labels are only needed while stage 1 still runs
        targets["train"] = model.cluster_targets(h_train)
        if h_val is not None:
            targets["val"] = model.cluster_targets(h_val)
    h1 = stage1.fit()

    # Stage 2: beamforming on the frozen clustering's hard mask, unsupervised on the sum rate.
    def beam_step(idx: torch.Tensor):
        hb = h_train[idx].to(device)
        with torch.no_grad():
            mask = model.hard_mask(hb, model.cluster_logits(hb))
        rate = sum_rate(hb, model.beamformers(hb, mask), sigma2, check=False)
        return -rate.mean(), {"rate": float(rate.detach().mean())}

    def beam_validate() -> dict[str, float]:
        return {"val_rate": evaluate_sum_rate(model, h_val, sigma2, batch_size=max(batch_size, 256))["sum_rate"]}

    def beam_train_mode() -> None:
        model.beam_net.train()
        model.cluster_net.eval()  # frozen: running statistics stay as trained

    stage2 = Trainer(model.beam_net, torch.optim.Adam(model.beam_net.parameters(), lr=lr), num_samples=n,
                     batch_size=batch_size, epochs=epochs, step=beam_step,
                     validate=None if h_val is None else beam_validate, monitor="val_rate", mode="max",
                     seed=seed, checkpoint=checkpointer, train_mode=beam_train_mode, desc=f"{desc} beamforming")
    h2 = stage2.fit()
    model.eval()
    return TwoStageHistory(cluster_train_loss=list(h1["train_loss"]), cluster_val_loss=list(h1["val_loss"]),
                           cluster_val_accuracy=list(h1["val_accuracy"]), train_rate=list(h2["train_rate"]),
                           val_rate=list(h2["val_rate"]), best_cluster_epoch=h1.best_epoch,
                           best_epoch=h2.best_epoch)

__all__ = [
    "FEATURE_FLOOR", "LOG_AMPLITUDE_RANGE", "MultiBranchResidualCNN", "TwoStageCNN", "TwoStageCNNSpec",
    "TwoStageHistory", "evaluate_sum_rate", "gain_fraction_clusters", "link_gains", "predict_beamformers",
    "train_two_stage_cnn",
]
