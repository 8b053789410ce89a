"""RJAPCBN: robust joint AP clustering and beamforming network (cell-free paper, Sec. IV).

Chen, Wang, Lin, Huang, Yang, *Computationally Efficient Unsupervised Deep Learning for Robust
Joint AP Clustering and Beamforming Design in Cell-Free Systems*
(``cellfree-robust-ap-clustering.txt``). ``Q`` APs with ``M`` antennas serve ``I`` users. The
network maps the estimated CSI ``h_hat`` to sparse beamformers ``V`` that meet the per-AP power
budget C1 and the clustering constraint C2 of problem (19). Its stages, in order:

1. **CSI conversion C(.) (Sec. IV-A).** The modulus ``|h_hat|``, arranged as the ``Q x I x M``
   tensor ``H_mod^3D``. Here that is ``[batch, M, Q, I]``, with the antennas as channels.
   ``csi="cartesian"`` feeds ``[Re; Im]`` instead. That is our extension, explained below.
2. **Residual CNN R(., theta) (Sec. IV-B).** :class:`chanlab.nn.residual_cnn.ResidualCNN`:
   ``L`` units of conv + BN + ReLU, a ``1 x 1`` identity mapping, and a tanh output with
   ``2M`` channels, ``V_R in [-1, 1]^{Q x I x 2M}``. Propositions 1-2 and Remark 2 are checked
   at construction.
3. **Adaptive AP clustering A(., theta) (Sec. IV-C).**

   * Thresholds (Eq. 25): ``T = AL(CL_1x1(POOL(H_mod^3D)))``, one ``t_i^q`` per AP-user pair,
     ``[batch, Q, I]``.
   * Differentiable threshold (Eq. 26): ``DT_i^q = 1 / (1 + exp(-k (pv_i^q - t_i^q)))`` with
     ``k = 50``, where ``pv_i^q = POOL(V_R[q, i, :])``.
   * Sparsification (Eq. 28): ``V_spa = V_R (x) C_A``, the mask repeated over the ``2M``
     channels.

4. **Beamforming conversion V(.) (Eq. 29).** ``V_spa[..., :M] + j V_spa[..., M:]``. It is
   returned in chanlab's cell-free layout ``[batch, I, Q, M]`` (``v[b, i, q]`` = ``v_i^q``),
   which :mod:`chanlab.metrics.rates` and :mod:`chanlab.classical.robust_sinr` take directly.
5. **Power constraint P(.) (Eq. 30).** Each AP's block ``{v_i^q}_i`` is scaled by
   ``sqrt(P_max / sum_i ||v_i^q||^2)`` when it exceeds ``P_max``. This is the Euclidean
   projection onto C1. The extracted Eq. (30) is garbled, and this is the reading that makes it
   a projection, as its ref. [30] does.
6. **Slack variables U(.) (Sec. IV-E, problem 31) and loss (Eq. 32).** For a fixed ``V``,
   problem (31) separates over users, and its optimum is ``gamma_i* = alpha_i* / beta_i*``. That
   is exactly the worst-case SINR bound of Eq. (9). :func:`update_slack_variables` computes it
   in closed form with :func:`chanlab.classical.robust_sinr.worst_case_terms`, in place of the
   paper's CVX call. Those values carry envelope-theorem gradients, so the loss
   ``L = -sum_i (log2(1 + gamma_i*) - lambda sum_q ||v_i^q||_1)`` trains the network end to end.

**Training and inference masks.** In training mode the mask is the sigmoid of Eq. (26). In
eval mode (or with ``hard=True``) the threshold is applied exactly, ``1[pv > t]``, so unserved
blocks are exactly zero. This is what Eq. (33)'s count of zeros needs, because a sigmoid is
never exactly 0. :meth:`RJAPCBN.serving_mask` returns that hard mask.

Choices the paper leaves open, and what is done here:

* **Input scaling (part of C).** The paper feeds the raw modulus. Cell-free moduli span many
  decades (path loss ``(200/d)^3`` and 8 dB shadowing), so the default ``input_norm="log"``
  feeds ``log1p(|h_hat| / s)``. Here ``s`` is the per-sample RMS of ``|h_hat|`` over all
  users, APs and antennas (detached). This map is increasing, so the ordering that
  Proposition 3 relies on is kept. It is also scale-invariant. ``"rms"`` feeds ``|h_hat| / s``,
  and ``"none"`` feeds the raw modulus, as the paper does.
* **POOL.** Both Eq. (25) and Eq. (26) pool "by the third dimension". Here POOL is the RMS over
  that dimension, ``sqrt(mean_c x_c^2)``, i.e. the block's ``l2`` norm divided by
  ``sqrt(channels)``. For the signed ``V_R``, mean pooling could cancel and max pooling ignores
  negative entries. The RMS measures the block's amplitude: ``pv_i^q = ||V_R[q, i, :]||_2 /
  sqrt(2M)`` lies in ``[0, 1]``, and it is 0 exactly when the beamformer block is 0. The same
  pooling is used on ``H_mod``, so both are "POOL" as in the paper.
* **Eq. (25): the 1 x 1 convolution and the activation.** One input and one output channel
  (Table II counts ``QI`` multiplications for it), so ``t = sigmoid(w * POOL(H)[q, i] + b)``.
  The activation is the sigmoid of the CBAM spatial attention that the paper cites ([29]). It
  puts ``T`` in ``(0, 1)``, the range of ``pv``. The weight is kept positive,
  ``w = softplus(w_raw)``, so ``T`` increases with the pooled CSI modulus. This makes
  Proposition 3 (a longer-range AP, with a weaker modulus, gets a smaller threshold) hold by
  construction. The paper's proof tacitly assumes ``w > 0``.
* **Initialisation of the thresholds.** ``softplus(w_raw) = 1`` and ``b = -2``. Weak links start
  near ``sigmoid(-2) = 0.12``, while the untrained ``pv`` are about 0.5. So training starts
  with nearly every link on, and the ``lambda`` term switches links off. The shared threshold
  starts at 0.12 too. The CNN uses PyTorch's default initialisation.
* **JcbNet's single threshold** (``threshold="shared"``). The paper criticises JcbNet (ref.
  [17]) for using one adaptive threshold (its ATReLU) for all AP-user pairs. The "shared" mode
  replaces Eq. (25) by one learned scalar ``t = sigmoid(t_raw)`` for every pair and sample, and
  keeps everything else. It is therefore the clustering ablation "RJAPCBN with JcbNet's
  threshold", not a re-implementation of JcbNet's whole network (its QoS terms and unit
  structure).
* **The ``l1`` norm in Eq. (32).** Taken literally, ``||v_i^q||_1 = sum_m |v_{i,m}^q|`` (complex
  moduli), computed on the output ``V_RJAPCBN`` (after the power projection), summed over users
  and APs, and averaged over the batch like the rate term. ``penalty="group"`` uses
  ``||v_i^q||_2`` instead, the group-LASSO norm of S-WMMSE (:mod:`chanlab.classical.wmmse`).
* **Where lambda enters.** ``loss = mean_batch[-sum_i log2(1 + gamma_i*) + lambda sum_{i,q}
  ||v_i^q||_1]``. This is Eq. (32) with the sum over ``i`` distributed. The paper uses
  ``lambda = 0.1`` (Sec. V-A) with ``P_max = 1``.
* **Modulus-only input, and the ``csi="cartesian"`` extension.** The paper's C(.) keeps only
  ``|h_hat|`` (``csi="modulus"``, the default). The network then never sees a channel phase,
  so it cannot beamform coherently, not even as MRT ``v_i^q ~ h_hat_i^q`` does. We measured this
  on 2000 training drops, 15 epochs (``Q = I = 16``, ``M = 4``, 10 dB reference SNR,
  ``lambda = 0.1``, ``eta = 0.1``). The validation worst-case sum rate was about 11 bit/s/Hz.
  Full-power per-AP MRT with every AP on reaches about 30 bit/s/Hz. ``csi="cartesian"`` feeds
  ``[Re; Im]`` (``2M`` channels, modulus log-compressed, phase kept) and reached about
  25 bit/s/Hz with ``Q_ave`` about 1.9. This option is ours, not the paper's. The thresholds of
  Eq. (25) pool the modulus in both modes.
* **Error radii.** :mod:`chanlab.classical.robust_sinr` merges per-AP radii
  ``[batch, I, Q]`` into the paper's ``eps_i = sqrt(sum_q (eps_i^q)^2)`` (below Eq. 15).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chanlab.classical.wmmse import project_per_ap_power as _wmmse_projection
from chanlab.classical.robust_sinr import WorstCaseTerms, worst_case_terms
from chanlab.core.errors import ConfigError, DataError
from chanlab.nn.residual_cnn import ResidualCNN

_LN2 = math.log(2.0)
#: The paper's amplification parameter of Eq. (26) ("set 50 empirically").
PAPER_K = 50.0
#: The paper's balance between sum rate and AP clustering (Sec. V-A, Fig. 4).
PAPER_LAMBDA = 0.1
#: Convolution units of R(., theta) (Sec. V-A) and kernel size (Table I).
PAPER_N_UNITS = 5
PAPER_KERNEL = 5
#: Relative amplitude margin, in machine epsilons, kept below a budget after projection.
_MARGIN_ULPS = 16

_INPUT_NORMS = ("log", "rms", "none")
_THRESHOLDS = ("attention", "shared")
_PENALTIES = ("l1", "group")
_CSI_MODES = ("modulus", "cartesian")


# --------------------------------------------------------------------------------------------
# The stages, as functions
# --------------------------------------------------------------------------------------------

def _check_cellfree(h_hat: torch.Tensor, name: str = "h_hat") -> None:
    if not isinstance(h_hat, torch.Tensor):
        raise DataError(f"{name}: expected a torch.Tensor, got {type(h_hat).__name__}")
    if not h_hat.is_complex():
        raise DataError(f"{name}: expected a complex tensor, got dtype {h_hat.dtype}")
    if h_hat.ndim != 4:
        raise DataError(f"{name}: expected [batch, n_users, n_aps, n_ant], got shape "
                        f"{list(h_hat.shape)}")


def csi_conversion(h_hat: torch.Tensor, input_norm: str = "log", csi: str = "modulus") -> torch.Tensor:
    """C(.) of Sec. IV-A: ``[batch, I, Q, M]`` complex CSI to a real ``[batch, C, Q, I]`` tensor.

    Args:
        h_hat: estimated CSI, cell-free layout ``[batch, n_users, n_aps, n_ant]``.
        input_norm: how the values are scaled, with ``z = h / s`` and ``s`` the per-sample RMS of
            ``|h|`` (see the module docstring). ``"log"`` compresses the modulus to
            ``log1p(|z|)``, ``"rms"`` uses ``z`` and ``"none"`` uses ``h`` unscaled.
        csi: ``"modulus"`` (the paper): the moduli, ``C = M`` channels, ``H_mod^3D``.
            ``"cartesian"`` (an extension, not in the paper): real parts then imaginary
            parts, ``C = 2M``. With ``"log"`` the modulus is compressed and the phase kept.

    Returns:
        Real ``[batch, C, n_aps, n_users]``, with the antennas (and parts) as channels.
    """
    _check_cellfree(h_hat)
    if input_norm not in _INPUT_NORMS:
        raise ConfigError(f"input_norm: expected one of {_INPUT_NORMS}, got {input_norm!r}")
    if csi not in _CSI_MODES:
        raise ConfigError(f"csi: expected one of {_CSI_MODES}, got {csi!r}")
    h = h_hat.permute(0, 3, 2, 1)  # [B, M, Q, I]
    mod = h.abs()
    if input_norm != "none":
        scale = mod.detach().square().mean((1, 2, 3), keepdim=True).sqrt()
        scale = scale.clamp_min(torch.finfo(mod.dtype).tiny)
        h, mod = h / scale, mod / scale
        if input_norm == "log":
            gain = torch.where(mod > 0, torch.log1p(mod) / mod.clamp_min(torch.finfo(mod.dtype).tiny),
                               torch.ones_like(mod))
            h, mod = h * gain, torch.log1p(mod)
    if csi == "modulus":
        return mod.contiguous()
    return torch.cat([h.real, h.imag], dim=1).contiguous()


def rms_pool(x: torch.Tensor) -> torch.Tensor:
    """POOL over the channel (third) dimension: ``[batch, C, Q, I]`` to ``[batch, Q, I]``.

    ``sqrt(mean_c x_c^2)``, differentiable everywhere. At an all-zero block the gradient is 0.
    """
    return torch.linalg.vector_norm(x, dim=1) / math.sqrt(x.shape[1])


def differentiable_threshold(pv: torch.Tensor, t: torch.Tensor, k: float = PAPER_K) -> torch.Tensor:
    """Eq. (26): ``DT = 1 / (1 + exp(-k (pv - t)))``, elementwise."""
    return torch.sigmoid(k * (pv - t))


def hard_threshold(pv: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The ideal threshold function that Eq. (26) approximates: ``1[pv > t]``, as floats."""
    return (pv > t).to(pv.dtype)


def beamforming_conversion(v_spa: torch.Tensor) -> torch.Tensor:
    """V(.) of Eq. (29): real ``[batch, 2M, Q, I]`` to complex ``[batch, I, Q, M]``.

    Channels ``0..M-1`` are the real parts and ``M..2M-1`` the imaginary parts. The result is in
    chanlab's cell-free layout, ``out[b, i, q, m]`` = ``v_i^q[m]``.
    """
    if v_spa.ndim != 4 or v_spa.shape[1] % 2:
        raise DataError(f"v_spa: expected [batch, 2M, Q, I], got {list(v_spa.shape)}")
    m = v_spa.shape[1] // 2
    return torch.complex(v_spa[:, :m], v_spa[:, m:]).permute(0, 3, 2, 1)


def ap_power(v: torch.Tensor) -> torch.Tensor:
    """Per-AP transmit power ``sum_i ||v_i^q||^2`` of ``[batch, I, Q, M]`` beamformers: ``[batch, Q]``."""
    return (v.real.square() + v.imag.square()).sum((1, 3))


def project_per_ap_power(v: torch.Tensor, p_max: float | torch.Tensor = 1.0) -> torch.Tensor:
    """P(.) of Eq. (30): scale every AP's block whose power exceeds ``P_max`` onto the budget.

    Blocks within the budget are left alone. The others are scaled by
    ``sqrt(P_max / P_q) (1 - 16 eps)``. The margin of 16 machine epsilons keeps the
    recomputed power ``<= P_max`` under rounding.

    Args:
        v: ``[batch, n_users, n_aps, n_ant]`` complex.
        p_max: per-AP budget, a float or a real tensor broadcastable to ``[batch, n_aps]``.

    Returns:
        ``v`` scaled, same shape and dtype. It is differentiable.
    """
    _check_cellfree(v, "v")
    return _wmmse_projection(v, p_max)


# --------------------------------------------------------------------------------------------
# Threshold modules (Eq. 25 and JcbNet's single threshold)
# --------------------------------------------------------------------------------------------

_SOFTPLUS_ONE = math.log(math.e - 1.0)  # softplus(_SOFTPLUS_ONE) = 1
_T_BIAS_INIT = -2.0


class SpatialAttentionThreshold(nn.Module):
    """Eq. (25): ``T = sigmoid(w * POOL(H_mod) + b)`` with ``w = softplus(w_raw) > 0``, ``[B, Q, I]``.

    POOL is the RMS over the antennas. The ``1 x 1`` convolution has one input and one output
    channel, and its weight is kept positive so that Proposition 3 holds.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight_raw = nn.Parameter(torch.full((1, 1, 1, 1), _SOFTPLUS_ONE))
        self.bias = nn.Parameter(torch.full((1,), _T_BIAS_INIT))

    @property
    def weight(self) -> torch.Tensor:
        return F.softplus(self.weight_raw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, M, Q, I]`` (the converted CSI) to thresholds ``[batch, Q, I]`` in ``(0, 1)``."""
        pooled = rms_pool(x).unsqueeze(1)  # [B, 1, Q, I]
        return torch.sigmoid(F.conv2d(pooled, self.weight, self.bias)).squeeze(1)


class SharedThreshold(nn.Module):
    """JcbNet-style clustering: one learned threshold ``sigmoid(t_raw)`` for every AP-user pair."""

    def __init__(self) -> None:
        super().__init__()
        self.raw = nn.Parameter(torch.tensor(_T_BIAS_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, M, Q, I]`` (only its shape is used) to ``[batch, Q, I]``, one value everywhere."""
        b, _, q, i = x.shape
        return torch.sigmoid(self.raw).to(x.dtype).expand(b, q, i)


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

@dataclass
class RJAPCBNOutput:
    """Every intermediate of one forward pass.

    Attributes:
        v: ``[batch, I, Q, M]`` complex, ``V_RJAPCBN`` after the power projection.
        v_r: ``[batch, 2M, Q, I]`` real, the residual CNN's output ``V_R``.
        pooled: ``[batch, Q, I]``, ``pv_i^q = POOL(V_R[q, i, :])``.
        thresholds: ``[batch, Q, I]``, ``T`` of Eq. (25) (or the shared threshold).
        mask: ``[batch, Q, I]``, the clustering ``C_A``: Eq. (26) when soft, 0/1 when hard.
        hard: whether ``mask`` is the exact threshold.
    """

    v: torch.Tensor
    v_r: torch.Tensor
    pooled: torch.Tensor
    thresholds: torch.Tensor
    mask: torch.Tensor
    hard: bool


class RJAPCBN(nn.Module):
    """The RJAPCBN beamformer: ``h_hat [batch, I, Q, M]`` to sparse ``V [batch, I, Q, M]``.

    Args:
        n_aps: ``Q``.
        n_ant: ``M``.
        n_users: ``I``.
        kernel: convolution kernel of every unit (an int, ``(k^w, k^h)``, or one per unit).
            The paper uses 5 x 5 (Table I).
        n_units: ``L``, the number of convolution units. The paper uses 5.
        channels: kernels per hidden unit. The default is ``2M`` (Table II's ``C``).
        stride: strides per unit (Proposition 2 gives the padding when ``> 1``). The default
            is 1.
        threshold: ``"attention"`` (Eq. 25, one threshold per AP-user pair and sample) or
            ``"shared"`` (one learned threshold, as in JcbNet).
        k: the amplification parameter of Eq. (26). The paper uses 50.
        p_max: per-AP power budget ``P_max``. The paper uses 1.
        input_norm: scaling inside C(.): ``"log"`` (default), ``"rms"`` or ``"none"``.
        csi: the CNN's input, ``"modulus"`` (the paper, ``M`` channels) or ``"cartesian"``
            (real and imaginary parts, ``2M`` channels; an extension, see the module docstring).
            The thresholds of Eq. (25) always pool the modulus.

    Raises:
        ConfigError: a size, kernel, stride or option is invalid, or a unit would not keep the
            ``Q x I`` size (Propositions 1 and 2).
    """

    def __init__(self, n_aps: int, n_ant: int, n_users: int, kernel=PAPER_KERNEL, *,
                 n_units: int = PAPER_N_UNITS, channels=None, stride=1,
                 threshold: str = "attention", k: float = PAPER_K, p_max: float = 1.0,
                 input_norm: str = "log", csi: str = "modulus"):
        super().__init__()
        for name, v in (("n_aps", n_aps), ("n_ant", n_ant), ("n_users", n_users)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}: expected an integer >= 1, got {v!r}")
        if threshold not in _THRESHOLDS:
            raise ConfigError(f"threshold: expected one of {_THRESHOLDS}, got {threshold!r}")
        if input_norm not in _INPUT_NORMS:
            raise ConfigError(f"input_norm: expected one of {_INPUT_NORMS}, got {input_norm!r}")
        if csi not in _CSI_MODES:
            raise ConfigError(f"csi: expected one of {_CSI_MODES}, got {csi!r}")
        for name, v in (("k", k), ("p_max", p_max)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"{name}: expected a finite number > 0, got {v!r}")
        self.n_aps, self.n_ant, self.n_users = n_aps, n_ant, n_users
        self.k = float(k)
        self.p_max = float(p_max)
        self.input_norm = input_norm
        self.csi = csi
        self.threshold_mode = threshold
        c_in = n_ant if csi == "modulus" else 2 * n_ant
        self.cnn = ResidualCNN(c_in, 2 * n_ant, (n_aps, n_users), n_units=n_units,
                               channels=channels, kernel=kernel, stride=stride)
        self.threshold = SpatialAttentionThreshold() if threshold == "attention" else SharedThreshold()
        self._config = dict(n_aps=n_aps, n_ant=n_ant, n_users=n_users, kernel=kernel,
                            n_units=n_units, channels=channels, stride=stride, threshold=threshold,
                            k=float(k), p_max=float(p_max), input_norm=input_norm,
                            csi=csi)

    def config(self) -> dict:
        """The constructor arguments, so that ``RJAPCBN(**model.config())`` rebuilds the network."""
        return dict(self._config)

    def _check_input(self, h_hat: torch.Tensor) -> None:
        _check_cellfree(h_hat)
        want = [self.n_users, self.n_aps, self.n_ant]
        if list(h_hat.shape[1:]) != want:
            raise DataError(f"h_hat: expected [batch, n_users={want[0]}, n_aps={want[1]}, "
                            f"n_ant={want[2]}], got {list(h_hat.shape)}")

    def run(self, h_hat: torch.Tensor, hard: bool | None = None) -> RJAPCBNOutput:
        """The full forward pass with its intermediates.

        Args:
            h_hat: ``[batch, n_users, n_aps, n_ant]`` complex estimated CSI.
            hard: apply the threshold exactly (``True``) or through Eq. (26) (``False``). The
                default, ``None``, means hard in eval mode and soft in training mode.

        Returns:
            An :class:`RJAPCBNOutput`.
        """
        self._check_input(h_hat)
        hard = (not self.training) if hard is None else bool(hard)
        param = next(self.parameters())
        h_hat = h_hat.to(param.device)
        x_mod = csi_conversion(h_hat, self.input_norm, "modulus").to(param.dtype)  # [B, M, Q, I]
        x = x_mod if self.csi == "modulus" else \
            csi_conversion(h_hat, self.input_norm, self.csi).to(param.dtype)
        v_r = self.cnn(x)                                        # [B, 2M, Q, I]
        pv = rms_pool(v_r)                                       # [B, Q, I]
        t = self.threshold(x_mod)                                # [B, Q, I], Eq. (25)
        mask = hard_threshold(pv, t) if hard else differentiable_threshold(pv, t, self.k)
        v_spa = v_r * mask.unsqueeze(1)                          # Eq. (28)
        v = project_per_ap_power(beamforming_conversion(v_spa), self.p_max)
        return RJAPCBNOutput(v=v, v_r=v_r, pooled=pv, thresholds=t, mask=mask, hard=hard)

    def forward(self, h_hat: torch.Tensor, hard: bool | None = None) -> torch.Tensor:
        """``h_hat [batch, I, Q, M]`` complex to ``V [batch, I, Q, M]`` complex (see :meth:`run`)."""
        return self.run(h_hat, hard).v

    @torch.no_grad()
    def serving_mask(self, h_hat: torch.Tensor) -> torch.Tensor:
        """The hard AP clustering at inference: ``[batch, n_users, n_aps]`` bool.

        Entry ``[b, i, q]`` is True when AP ``q`` serves user ``i``, i.e. ``pv_i^q > t_i^q``. The
        layout is that of :func:`chanlab.classical.wmmse.serving_aps`. In eval mode the blocks of
        ``self(h_hat)`` are exactly zero where this is False.
        """
        out = self.run(h_hat, hard=True)
        return out.mask.bool().transpose(1, 2)


# --------------------------------------------------------------------------------------------
# Slack variables (module U, problem 31) and the loss (Eq. 32)
# --------------------------------------------------------------------------------------------

@dataclass
class SlackVariables:
    """The optimal slack variables of problem (31) for a fixed ``V``, per sample and user.

    Attributes:
        alpha: ``[B, I]``, ``alpha_i*``: the worst-case signal power (largest ``alpha_i`` in C4-bar).
        beta: ``[B, I]``, ``beta_i*``: the worst-case interference plus noise (smallest ``beta_i``
            in C5-bar).
        gamma: ``[B, I]``, ``gamma_i* = alpha_i* / beta_i*``: the worst-case SINR bound of Eq. (9).
        mu: ``[B, I]``, the multiplier of the error ball in the interference problem.
        terms: the full :class:`~chanlab.classical.robust_sinr.WorstCaseTerms`.
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    gamma: torch.Tensor
    mu: torch.Tensor
    terms: WorstCaseTerms


def update_slack_variables(v: torch.Tensor, h_hat: torch.Tensor, eps: float | torch.Tensor,
                           noise_power: float | torch.Tensor, *, check: bool = True) -> SlackVariables:
    """U(.) of Sec. IV-E: solve problem (31) for the given beamformers, in closed form.

    Problem (31) maximises ``sum_i log2(1 + gamma_i)`` subject to C4-bar, C5-bar and C6. It
    separates over users, and each user's optimum is ``gamma_i* = alpha_i* / beta_i*``. The
    exact worst cases come from :func:`chanlab.classical.robust_sinr.worst_case_terms`. The
    S-lemma and the sign-definiteness lemma are exact for one ball, so this equals the CVX
    solution the paper uses, and it carries envelope-theorem gradients.

    Args:
        v: ``[batch, I, Q, M]`` complex beamformers.
        h_hat: ``[batch, I, Q, M]`` complex estimated CSI.
        eps: per-AP radii ``[batch, I, Q]``, per-user radii ``[batch, I]`` or one number.
        noise_power: ``sigma^2``, a float or a tensor broadcastable to ``[batch, I]``.
        check: run the finiteness checks (these sync the device).

    Returns:
        A :class:`SlackVariables`.
    """
    terms = worst_case_terms(h_hat, v, eps, noise_power, check=check)
    return SlackVariables(alpha=terms.signal, beta=terms.denominator, gamma=terms.sinr,
                          mu=terms.multiplier, terms=terms)


def sparsity_penalty(v: torch.Tensor, penalty: str = "l1") -> torch.Tensor:
    """``sum_{i,q} ||v_i^q||``: the norm of Eq. (32), per sample, ``[batch]``.

    ``"l1"`` (the paper's ``||.||_1``) sums the moduli of the complex entries. ``"group"``
    sums the block norms ``||v_i^q||_2``.
    """
    _check_cellfree(v, "v")
    if penalty not in _PENALTIES:
        raise ConfigError(f"penalty: expected one of {_PENALTIES}, got {penalty!r}")
    if penalty == "l1":
        return v.abs().sum((1, 2, 3))
    return torch.linalg.vector_norm(v, dim=-1).sum((1, 2))


def loss_eq32(v: torch.Tensor, h_hat: torch.Tensor, eps: float | torch.Tensor,
              noise_power: float | torch.Tensor, lam: float = PAPER_LAMBDA, *,
              penalty: str = "l1", check: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. (32), averaged over the batch: ``mean_b[-sum_i log2(1 + gamma_i*) + lam sum_{i,q} ||v_i^q||_1]``.

    ``gamma_i*`` comes from :func:`update_slack_variables`: the exact worst-case SINR bound of
    Eq. (9).

    Args:
        v: ``[batch, I, Q, M]`` complex beamformers (the network's output).
        h_hat, eps, noise_power: as for :func:`update_slack_variables`.
        lam: ``lambda >= 0``. The paper uses 0.1.
        penalty: ``"l1"`` (Eq. 32 as written) or ``"group"`` (block ``l2`` norms).
        check: run the finiteness checks.

    Returns:
        ``(loss, parts)``. ``loss`` is a differentiable scalar. ``parts`` holds the batch means
        of ``"worst_case_sum_rate"`` and ``"penalty"`` as floats.
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        raise ConfigError(f"lam: expected a finite number >= 0, got {lam!r}")
    slack = update_slack_variables(v, h_hat, eps, noise_power, check=check)
    rate = torch.log1p(slack.gamma).sum(-1) / _LN2            # [B]
    pen = sparsity_penalty(v, penalty).to(rate.dtype)          # [B]
    loss = (-rate + float(lam) * pen).mean()
    return loss, {"worst_case_sum_rate": float(rate.detach().mean()),
                  "penalty": float(pen.detach().mean())}


__all__ = [
    "PAPER_K", "PAPER_KERNEL", "PAPER_LAMBDA", "PAPER_N_UNITS", "RJAPCBN", "RJAPCBNOutput",
    "SharedThreshold", "SlackVariables", "SpatialAttentionThreshold", "ap_power",
    "beamforming_conversion", "csi_conversion", "differentiable_threshold", "hard_threshold",
    "loss_eq32", "project_per_ap_power", "rms_pool", "sparsity_penalty", "update_slack_variables",
]
