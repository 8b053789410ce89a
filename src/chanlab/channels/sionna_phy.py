"""MIMO-OFDM CSI from the Sionna 2.x PHY 3GPP TR 38.901 models (CDL, UMi, UMa).

Three batched, seeded generators:

* :func:`generate_cdl` - CDL-A..E links, ``[num, n_ant, n_sc]`` complex64;
* :func:`generate_scenario` - UMi / UMa links on random single-sector drops,
  ``[num, n_ant, n_sc]`` complex64;
* :func:`generate_multiuser` - narrowband multi-user drops, ``[num, n_users, n_ant]``
  complex64.

Link and antennas
-----------------
Downlink: the base station (BS) transmits with an ``n_ant``-element array, every user
(UT) has one antenna. All elements (BS and UT) are single-polarized (vertical, slant 0)
with Sionna's ``"omni"`` pattern, i.e. an isotropic element of gain 1 (0 dBi): the
array response carries no element-pattern weighting.

Time
----
By default each sample is one snapshot at ``t = 0``. :func:`generate_cdl` and
:func:`generate_scenario` take ``n_time`` and ``time_step`` (s): with ``n_time > 1``
each sample is a sequence of ``n_time`` snapshots ``time_step`` apart, returned as
``[num, n_time, n_ant, n_sc]``, along which the users move at ``speed`` (m/s, random
direction) and the paths rotate with their Doppler shifts. ``speed`` therefore only
matters for sequences: a single snapshot at ``t = 0`` has Doppler phase 1.

Antenna ordering (how to match a steering vector)
-------------------------------------------------
The BS array lies in the y-z plane of its local frame; the broadside direction is the
local x axis. With ``array="ula"`` the ``n_ant`` elements sit on the y axis at
``y_n = (n - (n_ant - 1) / 2) * spacing * wavelength``, ``n = 0 .. n_ant - 1``, so index
``n`` grows with y. For a path leaving the BS with azimuth ``phi`` (measured from
broadside, towards +y) and zenith ``theta_z`` (90 deg = horizontal), Sionna's element
``n`` gets the phase ``+2 pi spacing n sin(theta_z) sin(phi)`` (plus a phase common to
all elements from centering the array). For horizontal paths (``theta_z = 90 deg``) the
channel is therefore, per subcarrier,

    h[n] = sum_p alpha_p a_n(theta_p),   a_n(theta) = exp(j 2 pi spacing n sin(theta)),

i.e. h is a superposition of the steering vectors a(theta) of the brief (not of
their conjugates), with theta the azimuth from broadside. A beam matched to a path is
``w = conj(a(theta)) / sqrt(n_ant)`` (``y = sum_n h[n] w[n]``); the DFT over the
antenna axis maps angular bin ``k`` to ``spacing * sin(theta) = k / n_ant`` (mod 1)
with ``torch.fft.fft`` (``-k / n_ant`` with ``torch.fft.ifft``).

With ``array="upa"`` the ``n_rows x n_cols`` grid (``n_cols = n_ant // n_rows``, same
``spacing`` horizontally and vertically) is returned in **row-major** order: element
``k = r * n_cols + c`` (so ``h.reshape(..., n_rows, n_cols, ...)`` gives ``[row, col]``),
column ``c`` grows along +y exactly like the ULA index, row ``r = 0`` is the *top* row
and ``r`` grows downwards (-z). Its phase is
``2 pi spacing (c sin(theta_z) sin(phi) - r cos(theta_z))``. (Sionna itself orders a
UPA column-major; this module permutes it to row-major. A ULA is unchanged.)

Subcarriers
-----------
Subcarrier ``k = 0 .. n_sc - 1`` is at baseband frequency
``(k - n_sc // 2) * subcarrier_spacing`` (Sionna's ``subcarrier_frequencies``: lowest
frequency first, the carrier at index ``n_sc // 2``). The multi-user generator returns
the flat response at the carrier (baseband ``f = 0``): the sum of the path coefficients.

Power
-----
CDL channels are returned as Sionna gives them: the power delay profile is normalized,
so the average power per entry is 1 in expectation (not per sample). UMi/UMa include
path loss, shadow fading and O2I loss (values of order 1e-5 and smaller); with
``normalize=True`` (default) each sample (``generate_scenario``) or each drop
(``generate_multiuser``, all users together, so the relative gains of the users of one
drop are kept) is scaled to unit average power per entry; ``normalize=False`` returns
the raw values.

Reproducibility
---------------
``seed`` sets ``sionna.phy.config.seed`` (which every Sionna block draws from) at the
start of each call, so the same arguments (including ``num`` and ``batch_size``) and
the same seed give an identical tensor on the same device. As a side effect Sionna's
global seed stays set to ``seed``; torch's global CPU/CUDA RNG states, which Sionna's
seeding also resets, are restored on return.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator

import torch

from chanlab.core.device import select_device
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress
from chanlab.core.validation import check_int_range, check_positive

__all__ = ["generate_cdl", "generate_scenario", "generate_multiuser",
           "CDL_MODELS", "SCENARIOS", "ARRAYS"]

CDL_MODELS = ("A", "B", "C", "D", "E")
SCENARIOS = ("umi", "uma", "rma", "inh")
ARRAYS = ("ula", "upa")
POLARIZATIONS = ("single", "dual")
_SOURCES = ("cdl",) + SCENARIOS
_O2I_MODELS = ("low", "high")
_MAX_SEED = 2**64 - 1


# --------------------------------------------------------------------------- validation

def _check_real(value, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name}: expected a real number, got {value!r}")
    check_positive(float(value), name, error=ConfigError, allow_zero=allow_zero)
    return float(value)


def _check_choice(value, name: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected one of {list(choices)}, got {value!r}")
    v = value.strip().upper() if upper else value.strip().lower()
    if v not in choices:
        raise ConfigError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return v


def _check_cdl_model(model) -> str:
    if isinstance(model, str) and model.strip().upper().startswith("CDL-"):
        model = model.strip()[4:]
    return _check_choice(model, "model", CDL_MODELS, upper=True)


def _check_array(array, n_ant, n_rows, spacing) -> tuple[str, int, int, float]:
    """Validate the BS array and return ``(array, n_rows, n_cols, spacing)``."""
    check_int_range(n_ant, "n_ant", low=1, error=ConfigError)
    array = _check_choice(array, "array", ARRAYS)
    spacing = _check_real(spacing, "spacing")
    if array == "ula":
        if n_rows is not None and n_rows != 1:
            raise ConfigError(f"n_rows: a ULA has one row; expected None or 1, got {n_rows!r} "
                              "(use array='upa' for a planar array)")
        return array, 1, int(n_ant), spacing
    if n_rows is None:
        raise ConfigError(f"n_rows: array='upa' needs n_rows, a divisor of n_ant={n_ant}; got None")
    check_int_range(n_rows, "n_rows", low=1, error=ConfigError)
    if n_ant % n_rows:
        raise ConfigError(f"n_rows: expected a divisor of n_ant={n_ant} for a "
                          f"n_rows x (n_ant // n_rows) UPA, got {n_rows}")
    return array, int(n_rows), int(n_ant) // int(n_rows), spacing


def _check_common(num, batch_size, seed, carrier_frequency, speed, show_progress) -> None:
    check_int_range(num, "num", low=1, error=ConfigError)
    check_int_range(batch_size, "batch_size", low=1, error=ConfigError)
    check_int_range(seed, "seed", low=0, high=_MAX_SEED, error=ConfigError)
    _check_real(carrier_frequency, "carrier_frequency")
    _check_real(speed, "speed", allow_zero=True)
    if not isinstance(show_progress, bool):
        raise ConfigError(f"show_progress: expected a bool, got {show_progress!r}")


def _check_time(n_time, time_step) -> None:
    check_int_range(n_time, "n_time", low=1, error=ConfigError)
    _check_real(time_step, "time_step")


def _check_yaw(yaw_spread) -> float:
    yaw_spread = _check_real(yaw_spread, "yaw_spread", allow_zero=True)
    if yaw_spread > 180:
        raise ConfigError(f"yaw_spread: expected degrees in [0, 180], got {yaw_spread}")
    return yaw_spread


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected a bool, got {value!r}")
    return value


def _sionna_device(device) -> tuple[torch.device, str]:
    """The torch device and the device string Sionna's blocks accept (``cpu``, ``cuda:N``)."""
    dev = select_device(device)
    if dev.type == "cuda":
        index = torch.cuda.current_device() if dev.index is None else dev.index
        dev = torch.device("cuda", index)
        return dev, f"cuda:{index}"
    return dev, "cpu"


# --------------------------------------------------------------------------- helpers

@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed Sionna with ``seed``; restore torch's global RNG states afterwards."""
    import sionna.phy

    cpu_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    sionna.phy.config.seed = int(seed)
    try:
        yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _arrays(n_rows: int, n_cols: int, spacing: float, carrier_frequency: float, sdev: str,
            polarization: str = "single"):
    """BS array (omni elements; single-pol V, or dual-pol ±45° cross) and single-antenna UT array."""
    from sionna.phy.channel.tr38901 import AntennaArray

    pol_type = "V" if polarization == "single" else "cross"
    bs = AntennaArray(num_rows=n_rows, num_cols=n_cols, polarization=polarization,
                      polarization_type=pol_type, antenna_pattern="omni",
                      carrier_frequency=carrier_frequency, vertical_spacing=spacing,
                      horizontal_spacing=spacing, precision="single", device=sdev)
    ut = AntennaArray(num_rows=1, num_cols=1, polarization="single", polarization_type="V",
                      antenna_pattern="omni", carrier_frequency=carrier_frequency,
                      precision="single", device=sdev)
    return bs, ut


def _row_major_perm(n_rows: int, n_cols: int, dev: torch.device, n_pol: int = 1) -> torch.Tensor | None:
    """Index map from Sionna's column-major UPA ordering to row-major (None for a single-pol ULA).

    With ``n_pol = 2`` Sionna lists all elements of the first polarization, then all of the
    second; that polarization-major order is kept and each block is made row-major.
    """
    if n_rows == 1 and n_pol == 1:
        return None
    # out[r * n_cols + c] = sionna[r + c * n_rows]
    block = torch.arange(n_rows * n_cols, device=dev).reshape(n_cols, n_rows).T.reshape(-1)
    return torch.cat([block + p * n_rows * n_cols for p in range(n_pol)])


def _ofdm_response(a: torch.Tensor, tau: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Frequency response ``h[..., n, f] = sum_p a[..., n, p] exp(-j 2 pi f tau[..., p])``.

    ``a``: ``[..., n_ant, P]`` complex64, ``tau``: ``[..., P]``, ``freqs``: ``[F]``.
    Same result as :func:`sionna.phy.channel.cir_to_ofdm_channel`, but the phase
    factors are built once per path (not per antenna) and reduced with one einsum.
    The product ``f * tau`` is formed in float64 and wrapped to one cycle before the
    float32 exponential, so long delays keep their phase accuracy.
    """
    cycles = tau.to(torch.float64).unsqueeze(-1) * freqs.to(torch.float64)  # [..., P, F]
    cycles = torch.remainder(cycles, 1.0).to(torch.float32)
    e = torch.polar(torch.ones_like(cycles), cycles.mul_(-2.0 * math.pi))
    return torch.einsum("...np,...pf->...nf", a, e)


def _normalize(h: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Scale so that the mean of ``|h|^2`` over ``dims`` is 1 (all-zero slices stay zero)."""
    p = h.abs().to(torch.float64).square().mean(dim=dims, keepdim=True)
    scale = torch.where(p > 0, p.rsqrt(), torch.ones_like(p)).to(torch.float32)
    return h * scale


def _batches(num: int, batch_size: int, show_progress: bool, desc: str):
    starts = range(0, num, batch_size)
    if not show_progress:
        return starts
    return progress(starts, total=len(starts), desc=desc, unit="batch")


def _cdl_sampler(model: str, delay_spread: float, carrier_frequency: float, speed: float,
                 yaw_spread: float, seed: int, bs, ut, sdev: str):
    """``draw(b, n_time, sampling_frequency) -> (a, tau)`` of Sionna's CDL.

    With ``yaw_spread > 0`` (degrees) every sample gets its own BS yaw, uniform in
    ``[-yaw_spread, yaw_spread]``, drawn from a generator seeded with ``seed``: the CDL
    table fixes the cluster angles, so without it all samples share one angular support.
    Sionna takes a per-sample ``bs_orientation`` ``[b, 3]`` at construction, so the model
    is rebuilt per batch then (cheap next to drawing the rays).
    """
    from sionna.phy.channel.tr38901 import CDL

    def make(orientation=None):
        return CDL(model, delay_spread, carrier_frequency, ut_array=ut, bs_array=bs,
                   direction="downlink", bs_orientation=orientation, min_speed=speed,
                   max_speed=speed, precision="single", device=sdev)

    if yaw_spread == 0:
        return make()
    yaw_gen = torch.Generator().manual_seed(int(seed))

    def draw(b: int, n_time: int, sampling_frequency: float):
        yaw = (2 * torch.rand(b, generator=yaw_gen, dtype=torch.float64) - 1) * math.radians(yaw_spread)
        orientation = torch.zeros(b, 3, dtype=torch.float64)
        orientation[:, 0] = yaw
        return make(orientation.to(torch.float32))(b, n_time, sampling_frequency)

    return draw


# Indoor office drop (TR 38.901 InH has no sector topology in Sionna): the BS on the ceiling
# facing +x, users 1 m above the floor, uniform in a 120° sector between these 2-D distances.
INH_BS_HEIGHT, INH_UT_HEIGHT, INH_RADII = 3.0, 1.0, (1.0, 20.0)


def _scenario_channel(scenario: str, carrier_frequency: float, o2i_model: str, bs, ut, sdev: str):
    from sionna.phy.channel.tr38901 import InH, RMa, UMa, UMi

    common = dict(carrier_frequency=carrier_frequency, ut_array=ut, bs_array=bs, direction="downlink",
                  precision="single", device=sdev)
    if scenario == "inh":
        return InH(indoor_scenario="open", **common)
    if scenario == "rma":
        return RMa(**common)
    return (UMi if scenario == "umi" else UMa)(o2i_model=o2i_model, **common)


def _inh_topology(b: int, n_ut: int, speed: float, sdev: str):
    """``b`` indoor-office drops of ``n_ut`` users (``INH_*`` above), in Sionna's topology layout."""
    def rand(*shape):
        return torch.rand(*shape, device=sdev)

    r_min, r_max = INH_RADII
    r = torch.sqrt(r_min ** 2 + rand(b, n_ut) * (r_max ** 2 - r_min ** 2))     # uniform over the area
    phi = (rand(b, n_ut) - 0.5) * (2 * math.pi / 3)
    ut_loc = torch.stack([r * torch.cos(phi), r * torch.sin(phi), torch.full_like(r, INH_UT_HEIGHT)], -1)
    bs_loc = torch.tensor([0.0, 0.0, INH_BS_HEIGHT], device=sdev).expand(b, 1, 3).contiguous()
    ut_orient = torch.stack([(rand(b, n_ut) * 2 - 1) * math.pi, torch.zeros(b, n_ut, device=sdev),
                             torch.zeros(b, n_ut, device=sdev)], -1)
    bs_orient = torch.zeros(b, 1, 3, device=sdev)
    heading = rand(b, n_ut) * 2 * math.pi
    ut_vel = torch.stack([speed * torch.cos(heading), speed * torch.sin(heading), torch.zeros_like(heading)], -1)
    in_state = torch.ones(b, n_ut, dtype=torch.bool, device=sdev)          # InH: every user indoors
    return ut_loc, bs_loc, ut_orient, bs_orient, ut_vel, in_state


def _scenario_cir(channel, scenario: str, b: int, n_ut: int, speed: float, sdev: str,
                  n_time: int = 1, time_step: float = 1.0):
    """One fresh random single-sector drop per batch entry -> ``a [b, n_ut, n_ant, P, n_time]``,
    ``tau [b, n_ut, P]``."""
    from sionna.phy.channel import gen_single_sector_topology

    if scenario == "inh":
        topology = _inh_topology(b, n_ut, speed, sdev)
    else:
        topology = gen_single_sector_topology(b, n_ut, scenario, min_ut_velocity=speed,
                                              max_ut_velocity=speed, precision="single",
                                              device=sdev)
    channel.reset_topology()          # the batch size can change on the last batch
    channel.set_topology(*topology, los="random")
    a, tau = channel(num_time_samples=n_time, sampling_frequency=1.0 / time_step)
    # a: [b, num_rx=n_ut, 1, num_tx=1, n_ant, P, n_time]; tau: [b, n_ut, 1, P]
    return a[:, :, 0, 0], tau[:, :, 0, :]


def _time_major(a: torch.Tensor, tau: torch.Tensor, freqs: torch.Tensor, n_time: int) -> torch.Tensor:
    """``a [b, n_ant, P, T]``, ``tau [b, P]`` -> ``[b, n_ant, F]`` (T = 1) or ``[b, T, n_ant, F]``."""
    if n_time == 1:
        return _ofdm_response(a[..., 0], tau, freqs)
    return _ofdm_response(a.permute(0, 3, 1, 2), tau[:, None], freqs)


def _wideband(num: int, draw, *, n_ant: int, rows: int, cols: int, spacing: float,
              carrier_frequency: float, n_sc: int, subcarrier_spacing: float, n_time: int,
              normalize: bool, batch_size: int, seed: int, device, show_progress: bool,
              desc: str) -> torch.Tensor:
    """The batch loop shared by the wideband generators.

    ``draw(bs_array, ut_array, sionna_device)`` builds the channel model once and returns
    ``cir(b) -> (a [b, n_ant, P, n_time], tau [b, P])`` for one batch of ``b`` samples.
    Returns ``[num, n_ant, n_sc]`` (``[num, n_time, n_ant, n_sc]`` when ``n_time > 1``).
    """
    from sionna.phy.channel import subcarrier_frequencies

    dev, sdev = _sionna_device(device)
    shape = (num, n_ant, n_sc) if n_time == 1 else (num, n_time, n_ant, n_sc)
    out = torch.empty(shape, dtype=torch.complex64, device=dev)
    perm = _row_major_perm(rows, cols, dev)
    with _seeded(seed):
        bs, ut = _arrays(rows, cols, spacing, carrier_frequency, sdev)
        cir = draw(bs, ut, sdev)
        freqs = subcarrier_frequencies(n_sc, subcarrier_spacing, precision="double", device=sdev)
        for start in _batches(num, batch_size, show_progress, desc):
            b = min(batch_size, num - start)
            a, tau = cir(b)
            h = _time_major(a, tau, freqs, n_time)                 # [b, (T,) n_ant, n_sc]
            if normalize:
                h = _normalize(h, tuple(range(1, h.ndim)))
            out[start:start + b] = h if perm is None else h[..., perm, :]
    return out


# --------------------------------------------------------------------------- public API

def generate_cdl(num: int, *, model: str = "C", n_ant: int = 32, array: str = "ula",
                 n_rows: int | None = None, spacing: float = 0.5,
                 carrier_frequency: float = 3.5e9, n_sc: int = 1024,
                 subcarrier_spacing: float = 30e3, delay_spread: float = 300e-9,
                 speed: float = 0.0, n_time: int = 1, time_step: float = 1e-3,
                 yaw_spread: float = 0.0, batch_size: int = 256, seed: int = 0, device="cpu",
                 show_progress: bool = True) -> torch.Tensor:
    """Downlink MISO-OFDM CSI from the TR 38.901 CDL model ``model`` (``"A"``..``"E"``).

    Every sample is an independent draw of Sionna's single-link CDL channel (random
    ray coupling and random ray phases; the cluster delays and angles are those of the
    CDL table, scaled by ``delay_spread``, so all samples share the same angular and
    delay support). ``yaw_spread`` (degrees) rotates each sample's BS array by its own
    yaw, uniform in ``[-yaw_spread, yaw_spread]``, which spreads the samples in angle
    (0 keeps Sionna's fixed orientation). The array conventions are in the module
    docstring.

    Returns ``[num, n_ant, n_sc]`` complex64 on ``device`` (``[num, n_time, n_ant, n_sc]``
    when ``n_time > 1``: snapshots ``time_step`` seconds apart, users moving at ``speed``),
    unit average power per entry in expectation (Sionna's normalized power delay profile;
    not rescaled here).
    """
    _check_common(num, batch_size, seed, carrier_frequency, speed, show_progress)
    _check_time(n_time, time_step)
    model = _check_cdl_model(model)
    array, rows, cols, spacing = _check_array(array, n_ant, n_rows, spacing)
    check_int_range(n_sc, "n_sc", low=1, error=ConfigError)
    _check_real(subcarrier_spacing, "subcarrier_spacing")
    _check_real(delay_spread, "delay_spread")
    yaw_spread = _check_yaw(yaw_spread)

    def draw(bs, ut, sdev):
        cdl = _cdl_sampler(model, delay_spread, carrier_frequency, speed, yaw_spread, seed, bs, ut, sdev)

        def cir(b: int):
            a, tau = cdl(b, n_time, 1.0 / time_step)
            # a: [b, 1, 1, 1, n_ant, P, n_time]; tau: [b, 1, 1, P]
            return a[:, 0, 0, 0], tau[:, 0, 0, :]

        return cir

    return _wideband(num, draw, n_ant=n_ant, rows=rows, cols=cols, spacing=spacing,
                     carrier_frequency=carrier_frequency, n_sc=n_sc, subcarrier_spacing=subcarrier_spacing,
                     n_time=n_time, normalize=False, batch_size=batch_size, seed=seed, device=device,
                     show_progress=show_progress, desc=f"CDL-{model}")


def generate_scenario(num: int, *, scenario: str = "umi", n_ant: int = 32, array: str = "ula",
                      n_rows: int | None = None, spacing: float = 0.5,
                      carrier_frequency: float = 3.5e9, n_sc: int = 1024,
                      subcarrier_spacing: float = 30e3, speed: float = 0.0,
                      n_time: int = 1, time_step: float = 1e-3,
                      o2i_model: str = "low", normalize: bool = True, batch_size: int = 256,
                      seed: int = 0, device="cpu", show_progress: bool = True) -> torch.Tensor:
    """Downlink MISO-OFDM CSI from a TR 38.901 system-level model: ``scenario`` is ``"umi"``,
    ``"uma"``, ``"rma"`` (rural macro) or ``"inh"`` (indoor office, open plan).

    Each sample is one user dropped at random in a fresh single-sector topology
    (Sionna's ``gen_single_sector_topology`` for UMi/UMa/RMa: BS at the origin at the
    scenario's height, pointing at the sector centre; user uniform in the 120-degree sector,
    indoor with the scenario's probability, ``o2i_model`` ``"low"``/``"high"`` O2I loss for
    UMi/UMa). InH has no sector topology in Sionna, so its drop is ours: the BS on a 3 m
    ceiling facing +x and the user 1 m high, uniform over a 120-degree sector between 1 m and
    20 m (a pico-cell room). LoS/NLoS is drawn from the TR 38.901 LoS probability.
    Large-scale parameters, path loss and shadow fading are included.

    ``normalize=True`` scales every sample (a whole sequence when ``n_time > 1``) to unit
    average power per entry (removes path loss and shadowing); ``normalize=False``
    returns the raw values.

    Returns ``[num, n_ant, n_sc]`` complex64 on ``device`` (``[num, n_time, n_ant, n_sc]``
    when ``n_time > 1``, as in :func:`generate_cdl`).
    """
    _check_common(num, batch_size, seed, carrier_frequency, speed, show_progress)
    _check_time(n_time, time_step)
    scenario = _check_choice(scenario, "scenario", SCENARIOS)
    o2i_model = _check_choice(o2i_model, "o2i_model", _O2I_MODELS)
    array, rows, cols, spacing = _check_array(array, n_ant, n_rows, spacing)
    check_int_range(n_sc, "n_sc", low=1, error=ConfigError)
    _check_real(subcarrier_spacing, "subcarrier_spacing")
    _check_bool(normalize, "normalize")

    def draw(bs, ut, sdev):
        channel = _scenario_channel(scenario, carrier_frequency, o2i_model, bs, ut, sdev)

        def cir(b: int):
            a, tau = _scenario_cir(channel, scenario, b, 1, speed, sdev, n_time, time_step)
            return a[:, 0], tau[:, 0]

        return cir

    return _wideband(num, draw, n_ant=n_ant, rows=rows, cols=cols, spacing=spacing,
                     carrier_frequency=carrier_frequency, n_sc=n_sc, subcarrier_spacing=subcarrier_spacing,
                     n_time=n_time, normalize=normalize, batch_size=batch_size, seed=seed, device=device,
                     show_progress=show_progress, desc=scenario.upper())


def generate_multiuser(num: int, *, n_users: int, source: str = "cdl", model: str = "C",
                       scenario: str = "umi", n_ant: int = 32, array: str = "ula",
                       n_rows: int | None = None, spacing: float = 0.5,
                       carrier_frequency: float = 3.5e9, delay_spread: float = 300e-9,
                       speed: float = 0.0, yaw_spread: float = 0.0, o2i_model: str = "low",
                       polarization: str = "single", normalize: bool = True, batch_size: int = 256,
                       seed: int = 0, device="cpu", show_progress: bool = True) -> torch.Tensor:
    """Narrowband downlink multi-user drops ``[num, n_users, n_ant]`` complex64.

    The flat response at the carrier (baseband ``f = 0``, the sum of the path
    coefficients) of ``n_users`` single-antenna users served by one ``n_ant`` BS.

    * ``source="cdl"``: the users of a drop are independent CDL-``model`` draws (CDL is a
      single-link model); values as Sionna gives them (unit average power per entry in
      expectation), ``normalize`` has no effect. ``delay_spread`` does not change the
      response at ``f = 0``. ``yaw_spread`` (degrees) gives each user its own angular
      offset, as in :func:`generate_cdl`; with 0 all users share the CDL table's angles.
    * ``source="umi"``/``"uma"``: all ``n_users`` are dropped in the same single-sector
      topology (see :func:`generate_scenario`) and share its BS. ``normalize=True``
      scales each drop (all users together) to unit average power per entry, keeping
      the users' relative gains (which span tens of dB); ``normalize=False`` returns
      the raw values with path loss.
    * ``source="scenario"``: the scenario named by ``scenario`` (``"umi"``/``"uma"``);
      ``scenario`` is read only in this case.

    ``polarization="dual"``: every element of the ``n_rows`` x ``n_cols`` array carries two
    cross-polarized (±45°) ports, so ``n_ant = 2 n_rows n_cols`` (a ULA then has
    ``n_ant / 2`` elements). Antenna ``p * n_ant / 2 + r * n_cols + c`` is polarization ``p``
    of the element in row ``r``, column ``c``.

    ``batch_size`` counts drops. Each drop is a snapshot at ``t = 0``, so ``speed`` does
    not change it (it is accepted for symmetry with the wideband generators).
    """
    _check_common(num, batch_size, seed, carrier_frequency, speed, show_progress)
    check_int_range(n_users, "n_users", low=1, error=ConfigError)
    src = _check_choice(source, "source", _SOURCES + ("scenario",))
    if src == "scenario":
        src = _check_choice(scenario, "scenario", SCENARIOS)
    polarization = _check_choice(polarization, "polarization", POLARIZATIONS)
    n_pol = 2 if polarization == "dual" else 1
    check_int_range(n_ant, "n_ant", low=1, error=ConfigError)
    if n_ant % n_pol:
        raise ConfigError(f"n_ant: a dual-polarized array has two ports per element; expected an even "
                          f"n_ant, got {n_ant}")
    array, rows, cols, spacing = _check_array(array, n_ant // n_pol, n_rows, spacing)
    _check_bool(normalize, "normalize")
    if src == "cdl":
        model = _check_cdl_model(model)
        _check_real(delay_spread, "delay_spread")
        yaw_spread = _check_yaw(yaw_spread)
    else:
        o2i_model = _check_choice(o2i_model, "o2i_model", _O2I_MODELS)
    dev, sdev = _sionna_device(device)

    out = torch.empty((num, n_users, n_ant), dtype=torch.complex64, device=dev)
    perm = _row_major_perm(rows, cols, dev, n_pol)
    with _seeded(seed):
        bs, ut = _arrays(rows, cols, spacing, carrier_frequency, sdev, polarization)
        if src == "cdl":
            channel = _cdl_sampler(model, delay_spread, carrier_frequency, speed, yaw_spread, seed,
                                   bs, ut, sdev)
        else:
            channel = _scenario_channel(src, carrier_frequency, o2i_model, bs, ut, sdev)
        desc = f"CDL-{model} MU" if src == "cdl" else f"{src.upper()} MU"
        for start in _batches(num, batch_size, show_progress, desc):
            b = min(batch_size, num - start)
            if src == "cdl":
                a, _ = channel(b * n_users, 1, 1.0)
                h = a[:, 0, 0, 0, :, :, 0].sum(dim=-1).reshape(b, n_users, n_ant)
            else:
                a, _ = _scenario_cir(channel, src, b, n_users, speed, sdev)
                h = a[..., 0].sum(dim=-1)                            # [b, n_users, n_ant]
                if normalize:
                    h = _normalize(h, (1, 2))
            out[start:start + b] = h if perm is None else h[..., perm]
    return out
