"""Ray-traced departure paths from a rooftop base station to many user positions (Sionna RT).

One idea: a BS stands on a roof of one of Sionna RT's built-in city scenes (Munich by
default), users walk a closed outdoor route around it, and :func:`trace_paths` returns, for
every user position, the departure angles and powers of the propagation paths the BS
launches towards it.

* :func:`rt_status` - can ray tracing run here (and if not, what to install)?
* :class:`RtSite` - the scene, the BS position and panel azimuth, the route's radii.
* :func:`outdoor_mask` - which ``x, y`` are outdoors (vectorized ray casts).
* :func:`route_loop` - a closed outdoor walking route around the BS.
* :func:`jitter_route` - a route with every point moved a little, staying outdoors.
* :func:`trace_paths` - powers and departure angles of the paths, ``[S, P]`` arrays.

Conventions
-----------
All positions are global scene coordinates in metres (``x, y`` horizontal, ``z`` up).
Azimuths are in the global frame, measured from +x towards +y; zenith angles from +z
(0 = straight up, pi/2 = horizontal). The BS has one isotropic, vertically polarized
antenna, so the returned powers carry no antenna pattern: apply a panel pattern and array
response yourself, using ``RtSite.bs_azimuth_deg`` as the panel's broadside.

Installation
------------
Sionna RT is optional (``pip install chanlab[rt]``) and imported only inside the functions,
so ``import chanlab.channels.raytracing`` works without it. On a CPU, Dr.Jit needs a
working LLVM: the default LLVM 14 of some distributions crashes, so :func:`rt_status` points
Dr.Jit at Debian's ``libLLVM-19`` (``apt-get install libllvm19``) through
``DRJIT_LIBLLVM_PATH`` before Dr.Jit is first imported. (Dr.Jit reads it when its LLVM
backend starts, at the first JIT operation, so calling :func:`rt_status` after something
merely imported Dr.Jit - ``sionna.phy`` does - still works; every function here calls it.)

Determinism and cost
--------------------
Paths are found with Sionna's deterministic shoot-and-bounce candidate generator
(``PathSolver(deterministic=True)``, fibonacci ray lattice), so the same inputs give
bit-identical outputs. Its memory grows like ``~32 bytes x max_depth x samples_per_src x
receivers``, so :func:`trace_paths` splits each chunk further when needed to stay within
``_MEMORY_BUDGET`` bytes. Run time is roughly proportional to ``samples_per_src x UEs``.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral, Real

import numpy as np

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.progress import progress

LLVM_PATH = "/usr/lib/x86_64-linux-gnu/libLLVM-19.so"

_STATUS: tuple[bool, str] | None = None   # cache of rt_status()
_SCENES: dict[str, object] = {}           # loaded Sionna scenes, one per scene name
_SOLVER: object | None = None             # one deterministic PathSolver
_MEMORY_BUDGET = 3 * 2**30                # bytes the candidate generator may use per solver call
_BYTES_PER_CANDIDATE = 32                 # measured: ~32 B per (depth x sample x receiver)

_INSTALL_RT = "pip install chanlab[rt]"
_INSTALL_LLVM = "apt-get install libllvm19"


# --------------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------------

def _cuda_present() -> bool:
    """A CUDA driver is visible (checked without importing Dr.Jit)."""
    import ctypes.util

    if ctypes.util.find_library("cuda"):
        return True
    return any(os.path.exists(p) for p in ("/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1"))


def _probe() -> tuple[bool, str]:
    try:
        version = importlib.metadata.version("sionna-rt")
    except importlib.metadata.PackageNotFoundError:
        return False, f"sionna-rt is not installed ({_INSTALL_RT}; on a CPU also {_INSTALL_LLVM})"
    env = os.environ.get("DRJIT_LIBLLVM_PATH")
    if env is None and os.path.exists(LLVM_PATH):
        os.environ["DRJIT_LIBLLVM_PATH"] = LLVM_PATH
        env = LLVM_PATH
    if env is not None and not os.path.exists(env):
        return False, (f"DRJIT_LIBLLVM_PATH={env} does not exist; point it at a libLLVM "
                       f"({_INSTALL_LLVM} gives {LLVM_PATH})")
    if env is None and not _cuda_present():
        return False, (f"no CUDA and no LLVM for Dr.Jit: {_INSTALL_LLVM} (gives {LLVM_PATH}) "
                       f"or set DRJIT_LIBLLVM_PATH; sionna-rt itself: {_INSTALL_RT}")
    try:
        import drjit as dr
        import mitsuba as mi
        import sionna.rt as rt

        x = mi.Float([1.0, 2.0]) + 1.0
        dr.eval(x)
        if not np.allclose(np.array(x), [2.0, 3.0]):
            return False, "Dr.Jit returned wrong values in a smoke test; check the LLVM/CUDA backend"
        variant = mi.variant() or "none"
    except Exception as exc:  # an import or JIT failure, reported instead of raised
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return False, (f"sionna-rt {version} cannot run: {type(exc).__name__}: {msg} "
                       f"({_INSTALL_RT}; on CPU {_INSTALL_LLVM})")
    backend = "cuda" if variant.startswith("cuda") else "llvm" if variant.startswith("llvm") else variant
    major_minor = ".".join(str(getattr(rt, "__version__", version)).split(".")[:2])
    return True, f"sionna-rt {major_minor} on {backend}"


def rt_status() -> tuple[bool, str]:
    """Whether Sionna RT ray tracing can run here.

    Returns ``(True, "sionna-rt X.Y on llvm")`` (or ``on cuda``) if it can, else ``(False,
    reason)`` with a one-line reason that says what to install. Before importing Dr.Jit it
    sets ``DRJIT_LIBLLVM_PATH`` to :data:`LLVM_PATH` if the variable is unset and that file
    exists. If neither that variable nor the file nor CUDA is there, it returns ``False``
    without importing Dr.Jit (whose default LLVM may crash the interpreter). The result is
    cached for the process.
    """
    global _STATUS
    if _STATUS is None:
        _STATUS = _probe()
    return _STATUS


def _require_rt() -> None:
    ok, reason = rt_status()
    if not ok:
        raise ConfigError(f"ray tracing is not available: {reason}")


# --------------------------------------------------------------------------------------------
# Site and scene
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RtSite:
    """A BS on a rooftop of a built-in Sionna RT scene and the walking route around it.

    The default is Munich's Marienplatz (the scene's centre): the BS stands 2.5 m above the
    25.2 m roof of the New Town Hall's north-east wing, 1.5 m behind its facade (the roof
    edge runs from about (0, 24) to (40, 11)), and the panel faces the facade's normal,
    72 deg (north-north-east), over the open square and the streets beyond it; about 60 %
    of the outdoor ground 60-180 m away within +-60 deg of broadside has a line of sight
    to it. Among the roof edges (20-35 m) near the centre, this is where a closed outdoor
    loop at 60-180 m from the BS exists (around the Town Hall block), the condition for
    :func:`route_loop`. Sionna's example TX spot (8.5, 21) has none: the square lies within
    60 m of it, and within 180 m the streets west of the Town Hall are closed off to the
    north. Behind the BS (south-west) the Town Hall block reaches ~80 m deep and shadows
    the route there.

    Attributes:
        scene: name of a built-in scene (an attribute of ``sionna.rt.scene``).
        bs_position: ``(x, y, z)`` of the BS antenna, metres, global frame.
        bs_azimuth_deg: global azimuth of the panel's broadside, degrees from +x towards +y.
        route_radius: ``(min, max)`` horizontal distance of route points from the BS, metres.
        ue_height: height of the UE antenna above ground, metres.
    """

    scene: str = "munich"
    bs_position: tuple[float, float, float] = (20.0, 16.0, 27.7)
    bs_azimuth_deg: float = 72.0
    route_radius: tuple[float, float] = (60.0, 180.0)
    ue_height: float = 1.5


def _check_site(site) -> RtSite:
    if not isinstance(site, RtSite):
        raise ConfigError(f"site: expected an RtSite, got {type(site).__name__}")
    if not isinstance(site.scene, str):
        raise ConfigError(f"site.scene: expected the name of a built-in scene, got {site.scene!r}")
    try:
        pos = np.asarray(site.bs_position, dtype=float)
        r = np.asarray(site.route_radius, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"site: bs_position and route_radius must be numbers, got {site.bs_position!r}, "
                          f"{site.route_radius!r}") from None
    if pos.shape != (3,) or not np.isfinite(pos).all():
        raise ConfigError(f"site.bs_position: expected 3 finite numbers, got {site.bs_position!r}")
    if r.shape != (2,) or not np.isfinite(r).all() or not 0 <= r[0] < r[1]:
        raise ConfigError(f"site.route_radius: expected (min, max) with 0 <= min < max, got {site.route_radius!r}")
    _check_height(site.ue_height, "site.ue_height")
    if not isinstance(site.bs_azimuth_deg, Real) or not math.isfinite(site.bs_azimuth_deg):
        raise ConfigError(f"site.bs_azimuth_deg: expected a finite number, got {site.bs_azimuth_deg!r}")
    return site


def _check_height(h, name: str) -> float:
    if isinstance(h, bool) or not isinstance(h, Real) or not math.isfinite(h) or h <= 0:
        raise ConfigError(f"{name}: expected a positive height in metres, got {h!r}")
    return float(h)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _scene(name: str):
    """The Sionna scene ``name``, loaded once per process (``merge_shapes=True``)."""
    _require_rt()
    if name not in _SCENES:
        import sionna.rt as rt

        path = getattr(rt.scene, name, None) if isinstance(name, str) and not name.startswith("_") else None
        if not (isinstance(path, str) and path.endswith(".xml")):
            known = sorted(k for k, v in vars(rt.scene).items()
                           if isinstance(v, str) and v.endswith(".xml") and not k.startswith("_"))
            raise ConfigError(f"site.scene: expected a built-in Sionna RT scene, one of {known}; got {name!r}")
        _SCENES[name] = rt.load_scene(path, merge_shapes=True)
    return _SCENES[name]


def _coordinates(x, name: str, width: int, layout: str) -> np.ndarray:
    """``x`` as a finite float64 ``[n, width]`` array, or a DataError naming ``layout``."""
    a = np.asarray(x)
    if a.dtype.kind not in "iuf":
        raise DataError(f"{name}: expected a real array of shape [{'S' if width == 3 else 'n'}, {width}], "
                        f"got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim != 2 or a.shape[1] != width:
        raise DataError(f"{name}: expected shape [{'S' if width == 3 else 'n'}, {width}] ({layout}), "
                        f"got {list(a.shape)}")
    if not np.isfinite(a).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    return a


def _xy_array(xy, name: str) -> np.ndarray:
    return _coordinates(xy, name, 2, "x, y")


# --------------------------------------------------------------------------------------------
# Outdoor mask and routes
# --------------------------------------------------------------------------------------------

def _ground_height(scene, xy: np.ndarray) -> np.ndarray:
    """[n, 2] -> [n] z of the first surface hit by a ray cast straight down from above the
    scene (NaN where nothing is hit, i.e. outside the scene)."""
    import mitsuba as mi

    if len(xy) == 0:
        return np.zeros(0)
    top = float(scene.mi_scene.bbox().max.z) + 10.0
    n = len(xy)
    origin = mi.Point3f(mi.Float(xy[:, 0].astype(np.float32)), mi.Float(xy[:, 1].astype(np.float32)),
                        mi.Float(np.full(n, top, dtype=np.float32)))
    si = scene.mi_scene.ray_intersect(mi.Ray3f(origin, mi.Vector3f(0.0, 0.0, -1.0)))
    z = np.array(si.p.z, dtype=np.float64)
    return np.where(np.array(si.is_valid(), dtype=bool), z, np.nan)


def outdoor_mask(xy: np.ndarray, *, site: RtSite = RtSite(), ue_height: float | None = None) -> np.ndarray:
    """Which horizontal positions are outdoors in the site's scene.

    A ray is cast straight down onto each ``(x, y)`` from above the scene; the point is
    outdoors when the first surface it hits (the ground) lies at most ``ue_height / 2``
    high, i.e. nothing (roof, overhang, building interior) is above a UE standing there.
    Points outside the scene are not outdoors. One batched ray cast, no Python loop.

    Args:
        xy: ``[n, 2]`` global x, y in metres.
        site: the site whose scene is used.
        ue_height: UE antenna height in metres (default ``site.ue_height``).

    Returns:
        ``[n]`` bool.
    """
    _check_site(site)
    h = _check_height(site.ue_height if ue_height is None else ue_height, "ue_height")
    pts = _xy_array(xy, "xy")
    z = _ground_height(_scene(site.scene), pts)
    with np.errstate(invalid="ignore"):
        return np.isfinite(z) & (z <= 0.5 * h)


def _smooth_radius(rng: np.random.Generator, lo: float, hi: float):
    """A random smooth target radius r(phi) inside [lo, hi] (Fourier series up to order 3)."""
    k = np.arange(1, 4)
    a = rng.normal(size=3) / k
    b = rng.normal(size=3) / k
    phase0 = rng.uniform(0, 2 * np.pi)
    grid = np.linspace(0, 2 * np.pi, 721)
    raw = (a[:, None] * np.cos(k[:, None] * (grid + phase0)) + b[:, None] * np.sin(k[:, None] * (grid + phase0))).sum(0)
    scale = max(np.abs(raw).max(), 1e-9)
    mid, amp = 0.5 * (lo + hi), 0.35 * (hi - lo)

    def r_target(phi):
        s = (a[:, None] * np.cos(k[:, None] * (phi + phase0)) + b[:, None] * np.sin(k[:, None] * (phi + phase0))).sum(0)
        return mid + amp * s / scale
    return r_target


def _grid_loop(ok: np.ndarray, origin: np.ndarray, res: float, bs: np.ndarray, r_lo: float, r_hi: float,
               r_target, cut_phi: float, weight: float = 20.0) -> np.ndarray | None:
    """Shortest closed loop around the BS through ``ok`` cells of a grid (8-connected), with a
    cost that pulls it towards ``r_target(phi)``. Returns ``[m + 1, 2]`` cell-centre points with
    the last equal to the first, or None if no loop exists."""
    from scipy.ndimage import label
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    nx, ny = ok.shape
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    cx = origin[0] + res * ix - bs[0]
    cy = origin[1] + res * iy - bs[1]
    r = np.hypot(cx, cy)
    psi = np.mod(np.arctan2(cy, cx) - cut_phi, 2 * np.pi)          # 0 at the cut ray
    node_ok = ok & (r >= r_lo) & (r <= r_hi)
    dev = (r - r_target(np.arctan2(cy, cx).ravel()).reshape(r.shape)) / (r_hi - r_lo)
    node_cost = 1.0 + weight * dev**2
    ncell = nx * ny
    idx = np.arange(ncell).reshape(nx, ny)
    rows, cols, wts, cross = [], [], [], []
    for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1)):
        xs0, xs1 = max(0, -dx), nx - max(0, dx)
        ys0, ys1 = max(0, -dy), ny - max(0, dy)
        a = (slice(xs0, xs1), slice(ys0, ys1))
        b = (slice(xs0 + dx, xs1 + dx), slice(ys0 + dy, ys1 + dy))
        both = node_ok[a] & node_ok[b]
        u, v = idx[a][both], idx[b][both]
        length = res * math.hypot(dx, dy)
        rows.append(u)
        cols.append(v)
        wts.append(length * 0.5 * (node_cost[a][both] + node_cost[b][both]))
        cross.append(np.abs(psi[a][both] - psi[b][both]) > np.pi)
    u, v, w, c = (np.concatenate(x) for x in (rows, cols, wts, cross))
    # Two sheets: an edge across the cut ray switches sheet, so a path from (s, 0) to (s, 1)
    # winds around the BS an odd number of times.
    su = np.concatenate([u, u + ncell])
    sv = np.concatenate([np.where(c, v + ncell, v), np.where(c, v, v + ncell)])
    graph = coo_matrix((np.concatenate([w, w]), (su, sv)), shape=(2 * ncell, 2 * ncell)).tocsr()
    # Start candidates: ok cells near the cut ray, closest to the target radius there.
    # (in the largest connected piece of the free cells: courtyards cannot hold a loop).
    lab, n_lab = label(node_ok, structure=np.ones((3, 3), bool))
    if n_lab == 0:
        return None
    main = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))
    near_cut = main & (np.minimum(psi, 2 * np.pi - psi) * np.maximum(r, 1e-9) <= 1.0 * res)
    cand = idx[near_cut]
    if len(cand) == 0:
        return None
    order = np.argsort(np.abs(dev.ravel()[cand]), kind="stable")
    starts = cand[order[:: max(1, len(order) // 8)][:8]]
    dist, pred = dijkstra(graph, directed=False, indices=starts, return_predecessors=True)
    loop_cost = dist[np.arange(len(starts)), starts + ncell]
    best = int(np.argmin(loop_cost))
    if not np.isfinite(loop_cost[best]):
        return None
    s = int(starts[best])
    chain = [s + ncell]
    while chain[-1] != s:
        chain.append(int(pred[best, chain[-1]]))
    cells = np.array(chain[::-1]) % ncell
    gx, gy = np.unravel_index(cells, (nx, ny))
    return np.stack([origin[0] + res * gx, origin[1] + res * gy], axis=1)


def _string_pull(pts: np.ndarray, valid_xy, step: float = 0.25, horizon: int = 400) -> np.ndarray:
    """Greedy shortcutting of a closed polyline ``[m + 1, 2]`` (last == first): from each kept
    vertex jump to the farthest later vertex whose straight segment passes ``valid_xy``."""
    m = len(pts) - 1
    keep = [0]
    i = 0
    while i < m:
        js = np.arange(i + 1, min(i + horizon, m) + 1)
        seg = pts[js] - pts[i]
        length = np.hypot(seg[:, 0], seg[:, 1])
        ns = int(np.ceil(length.max() / step)) + 1
        t = np.linspace(0.0, 1.0, ns)
        samples = pts[i][None, None, :] + t[None, :, None] * seg[:, None, :]
        good = valid_xy(samples.reshape(-1, 2)).reshape(len(js), ns).all(axis=1)
        good[0] = True
        i = int(js[np.nonzero(good)[0][-1]])
        keep.append(i)
    return pts[keep]


def _resample_closed(poly: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced by arc length along a closed polyline (last == first)."""
    seg = np.diff(poly, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    t = np.arange(n) * (s[-1] / n)
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], axis=1)


@lru_cache(maxsize=16)
def _route_xy(site: RtSite, seed: int, n_points: int) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    scene = _scene(site.scene)
    bs = np.asarray(site.bs_position[:2], dtype=float)
    r_lo, r_hi = (float(v) for v in site.route_radius)
    res = 1.0
    origin = bs - (r_hi + 3.0)
    n = int(np.ceil(2 * (r_hi + 3.0) / res)) + 1
    gx, gy = np.meshgrid(origin[0] + res * np.arange(n), origin[1] + res * np.arange(n), indexing="ij")
    z = _ground_height(scene, np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(n, n)
    with np.errstate(invalid="ignore"):
        outdoor = np.isfinite(z) & (z <= 0.5 * site.ue_height)
    rng = np.random.default_rng(seed)
    r_target = _smooth_radius(rng, r_lo, r_hi)
    cut_phi = math.radians(site.bs_azimuth_deg) + math.pi                  # behind the panel
    for clearance in (1, 2, 3):
        ok = binary_erosion(outdoor, structure=np.ones((3, 3), bool), iterations=clearance, border_value=0)
        cells = _grid_loop(ok, origin, res, bs, r_lo + 1.0, r_hi - 1.0, r_target, cut_phi)
        if cells is None:
            continue

        def valid_xy(p, ok=ok):
            i = np.rint((p[:, 0] - origin[0]) / res).astype(int)
            j = np.rint((p[:, 1] - origin[1]) / res).astype(int)
            inside = (i >= 0) & (i < n) & (j >= 0) & (j < n)
            r = np.hypot(p[:, 0] - bs[0], p[:, 1] - bs[1])
            good = inside & (r >= r_lo) & (r <= r_hi)
            good[good] = ok[i[good], j[good]]
            return good

        poly = _string_pull(cells, valid_xy)
        # Counter-clockwise (azimuth increasing along the walk).
        x, y = poly[:, 0] - bs[0], poly[:, 1] - bs[1]
        if np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) < 0:
            poly = poly[::-1]
        xy = _resample_closed(poly, n_points)
        zz = _ground_height(scene, xy)
        r = np.hypot(xy[:, 0] - bs[0], xy[:, 1] - bs[1])
        with np.errstate(invalid="ignore"):
            fine = np.isfinite(zz) & (zz <= 0.5 * site.ue_height) & (r >= r_lo) & (r <= r_hi)
        if fine.all():
            return xy
    raise ConfigError(f"route_loop: found no closed outdoor loop around the BS at {site.bs_position} "
                      f"with radius in {site.route_radius} m in scene {site.scene!r}")


def route_loop(site: RtSite = RtSite(), n_points: int = 1000, *, seed: int = 0) -> np.ndarray:
    """A closed outdoor walking route around the BS.

    The route is the cheapest closed loop around the BS through outdoor cells of a 1 m grid
    (cells at least ~1 m from any building, horizontal distance from the BS within
    ``site.route_radius``), where the cost pulls the loop towards a smooth random radius
    ``r(phi)`` drawn from ``seed``; its grid steps are then straightened into street-long
    segments and resampled by arc length. It walks counter-clockwise (azimuth increasing),
    so with the default site it passes in front of the panel (within +-60 deg of
    broadside) for roughly a third of its length. With the default site the only outdoor
    ring is around the Town Hall block: the loop is ~600 m long at 60-140 m from the BS,
    and the seed changes its course by tens of metres at most.

    Args:
        site: the BS and the route's radii and UE height.
        n_points: number of points along the route.
        seed: selects the target radius profile; same seed, same route.

    Returns:
        ``[n_points, 3]`` global positions (z = ``site.ue_height``) in walking order, evenly
        spaced along the loop; the step from the last point back to the first is one spacing
        too (the first point is not repeated at the end).
    """
    _check_site(site)
    n_points = _check_int(n_points, "n_points", 2)
    seed = _check_int(seed, "seed", 0)
    _require_rt()
    key = RtSite(site.scene, tuple(float(v) for v in site.bs_position), float(site.bs_azimuth_deg),
                 tuple(float(v) for v in site.route_radius), float(site.ue_height))   # hashable for the cache
    xy = _route_xy(key, seed, n_points)
    return np.concatenate([xy, np.full((n_points, 1), float(site.ue_height))], axis=1)


def jitter_route(route: np.ndarray, std_m: float, *, site: RtSite = RtSite(), seed: int) -> np.ndarray:
    """Every route point moved by a random horizontal offset, staying outdoors.

    Each point gets an offset drawn from ``N(0, std_m^2)`` per horizontal axis (``z`` is kept).
    Points whose move lands indoors (see :func:`outdoor_mask`) get a fresh, shrunk offset
    (scaled by 0.7 per retry, up to 10 retries); a point that still fails stays where it was.

    Args:
        route: ``[n, 3]`` global positions, all outdoors.
        std_m: standard deviation of the offset per axis, metres (0 returns a copy).
        site: the site whose scene decides what is outdoors.
        seed: seed of the offsets (e.g. the round of a walking test).

    Returns:
        ``[n, 3]`` float64, every point outdoors.

    Raises:
        DataError: ``route`` is not a finite ``[n, 3]`` array or has indoor points.
    """
    _check_site(site)
    pts = _positions(route, "route")
    if isinstance(std_m, bool) or not isinstance(std_m, Real) or not math.isfinite(std_m) or std_m < 0:
        raise ConfigError(f"std_m: expected a non-negative number of metres, got {std_m!r}")
    seed = _check_int(seed, "seed", 0)
    out = pts.copy()
    if std_m == 0 or len(pts) == 0:
        return out
    _require_rt()
    height = float(site.ue_height)
    if not outdoor_mask(pts[:, :2], site=site, ue_height=height).all():
        raise DataError("route: has points that are not outdoors; jitter_route keeps points outdoors")
    rng = np.random.default_rng(seed)
    todo = np.arange(len(pts))
    scale = 1.0
    for _ in range(11):
        cand = pts[todo, :2] + rng.normal(0.0, std_m * scale, size=(len(todo), 2))
        good = outdoor_mask(cand, site=site, ue_height=height)
        out[todo[good], :2] = cand[good]
        todo = todo[~good]
        if len(todo) == 0:
            break
        scale *= 0.7
    return out


# --------------------------------------------------------------------------------------------
# Path tracing
# --------------------------------------------------------------------------------------------

def _positions(x, name: str) -> np.ndarray:
    return _coordinates(x, name, 3, "x, y, z in metres")


def _solver():
    global _SOLVER
    if _SOLVER is None:
        import sionna.rt as rt

        _SOLVER = rt.PathSolver(deterministic=True)
    return _SOLVER


def _prepare(scene, site: RtSite, frequency: float) -> None:
    """Single isotropic V-polarized antennas, one BS at the site, no receivers."""
    import mitsuba as mi
    import sionna.rt as rt

    scene.frequency = frequency
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.remove(list(scene.transmitters) + list(scene.receivers))
    x, y, z = (float(v) for v in site.bs_position)
    scene.add(rt.Transmitter("bs", position=mi.Point3f(x, y, z), orientation=mi.Point3f(0.0, 0.0, 0.0)))


def _trace_chunk(scene, pos: np.ndarray, *, max_depth: int, samples: int, seed: int, diffraction: bool):
    """Paths to ``pos`` ([n, 3]): (power, zenith, azimuth, valid), each [n, P_found]."""
    import drjit as dr
    import mitsuba as mi
    import sionna.rt as rt

    n = len(pos)
    scene.remove(list(scene.receivers))
    rxs = [rt.Receiver(f"ue{i}", position=mi.Point3f(float(p[0]), float(p[1]), float(p[2])))
           for i, p in enumerate(pos)]
    scene.add(rxs)
    # Scene.targets gathers the receiver positions with a Python loop of scatters per device,
    # which at 1000 receivers builds a large kernel with the positions baked in as literals
    # (recompiled for every chunk). Hand the solver the same values as arrays instead: with
    # a synthetic 1x1 array, orientations, relative antenna positions and velocities are 0.
    p32 = pos.astype(np.float32)
    targets = mi.Point3f(mi.Float(p32[:, 0]), mi.Float(p32[:, 1]), mi.Float(p32[:, 2]))
    rel = scene.rx_array.rotate(scene.wavelength, mi.Point3f(0.0, 0.0, 0.0))

    def fast_targets(synthetic_array, return_velocities):
        if not synthetic_array:
            return type(scene).targets(scene, synthetic_array, return_velocities)
        vel = dr.zeros(mi.Vector3f, n) if return_velocities else None
        return targets, dr.zeros(mi.Point3f, n), dr.tile(rel, n), vel

    scene.targets = fast_targets
    try:
        paths = _solver()(scene, max_depth=max_depth, max_num_paths_per_src=max(100_000, 4000 * n),
                          samples_per_src=samples, synthetic_array=True, los=True, specular_reflection=True,
                          diffuse_reflection=False, refraction=True, diffraction=diffraction, seed=seed)
        a_re, a_im = paths.a                                   # [n_rx, 1, n_tx=1, 1, P]
        a_re = np.array(a_re, dtype=np.float64).reshape(n, -1)
        a_im = np.array(a_im, dtype=np.float64).reshape(n, -1)
        theta = np.array(paths.theta_t, dtype=np.float64).reshape(n, -1)   # [n_rx, n_tx=1, P]
        phi = np.array(paths.phi_t, dtype=np.float64).reshape(n, -1)
        valid = np.array(paths.valid, dtype=bool).reshape(n, -1)
    finally:
        del scene.targets
        scene.remove([r.name for r in rxs])
    return a_re**2 + a_im**2, theta, phi, valid


def trace_paths(ue_positions: np.ndarray, *, site: RtSite = RtSite(), carrier_frequency: float = 3.5e9,
                max_depth: int = 3, max_paths: int = 24, chunk: int = 1000, seed: int = 0,
                show_progress: bool = True, samples_per_src: int = 100_000,
                diffraction: bool = False) -> dict[str, np.ndarray]:
    """Ray-trace from the BS to every UE position and return the departure paths.

    The BS (``site.bs_position``) and every UE have one isotropic, vertically polarized
    antenna. Paths: line of sight, specular reflections and refractions (through walls and
    roofs) up to ``max_depth`` interactions, edge diffraction if ``diffraction``; no diffuse
    scattering. Sionna RT's deterministic shoot-and-bounce solver launches
    ``samples_per_src`` rays (fibonacci lattice) from the BS; the paths are then solved
    exactly by the image method, so a free line-of-sight path has exactly the free-space
    gain ``(lambda / (4 pi d))^2`` and the geometric departure angles.

    A line of sight blocked by a wall still gives a path in the LoS direction, weakened by
    the transmission (typically 3-10 dB); so the geometric departure angles alone do not
    tell a free LoS path.

    UEs may get no path at all (``n_paths == 0``, all-zero rows): without diffraction about
    half of the default :func:`route_loop` lies in the Town Hall's shadow behind the BS and
    receives nothing; ``diffraction=True`` (at almost no extra cost) leaves about a fifth.
    UEs are traced independently: a UE's paths do not depend on the other UEs or on
    ``chunk``.

    Args:
        ue_positions: ``[S, 3]`` global x, y, z in metres.
        site: scene and BS position (``bs_azimuth_deg`` is not used here: no pattern).
        carrier_frequency: Hz.
        max_depth: maximum number of interactions per path.
        max_paths: ``P``, paths kept per UE (the strongest).
        chunk: UEs per solver call (split further to fit ``_MEMORY_BUDGET``).
        seed: seed of the solver's ray sampler. The same seed gives bit-identical results;
            another seed can add or drop a few weak multi-bounce paths (total power changes
            by hundredths of a dB), the strong paths stay the same.
        show_progress: show a progress bar over UEs.
        samples_per_src: rays launched from the BS per solver call. More finds more (weak,
            multi-bounce) paths; time and memory grow linearly (on 2 CPU cores, 1000 UEs
            take ~8 s warm, ~15 s including Dr.Jit's first-call compilation).
        diffraction: also trace paths diffracted at edges (roof edges, building corners).

    Returns:
        dict with
        ``"power"``: ``[S, P]`` float64, ``|a|^2`` linear path gains (free space: ``(lambda /
        (4 pi d))^2``), sorted descending per row, zero-padded;
        ``"zenith"``: ``[S, P]`` float64, zenith angle of departure, radians (0 = up),
        0 where padded;
        ``"azimuth"``: ``[S, P]`` float64, azimuth of departure in the global frame, radians
        in ``(-pi, pi]`` from +x towards +y, 0 where padded;
        ``"n_paths"``: ``[S]`` int64, number of valid paths kept (``<= P``).

    Raises:
        DataError: ``ue_positions`` is not a finite ``[S, 3]`` array.
        ConfigError: bad arguments, or ray tracing cannot run here (with
        :func:`rt_status`'s reason).
    """
    pos = _positions(ue_positions, "ue_positions")
    _check_site(site)
    if (isinstance(carrier_frequency, bool) or not isinstance(carrier_frequency, Real)
            or not math.isfinite(carrier_frequency) or carrier_frequency <= 0):
        raise ConfigError(f"carrier_frequency: expected a positive frequency in Hz, got {carrier_frequency!r}")
    max_depth = _check_int(max_depth, "max_depth", 0)
    max_paths = _check_int(max_paths, "max_paths", 1)
    chunk = _check_int(chunk, "chunk", 1)
    seed = _check_int(seed, "seed", 0)
    samples = _check_int(samples_per_src, "samples_per_src", 1)
    for flag, name in ((show_progress, "show_progress"), (diffraction, "diffraction")):
        if not isinstance(flag, bool):
            raise ConfigError(f"{name}: expected a bool, got {flag!r}")
    _require_rt()

    n_ue = len(pos)
    power = np.zeros((n_ue, max_paths))
    zenith = np.zeros((n_ue, max_paths))
    azimuth = np.zeros((n_ue, max_paths))
    n_paths = np.zeros(n_ue, dtype=np.int64)
    if n_ue == 0:
        return {"power": power, "zenith": zenith, "azimuth": azimuth, "n_paths": n_paths}

    scene = _scene(site.scene)
    _prepare(scene, site, float(carrier_frequency))
    per_call = _MEMORY_BUDGET // (_BYTES_PER_CANDIDATE * max(max_depth, 1) * samples)
    step = max(1, min(chunk, per_call))
    bar = progress(total=n_ue, desc="ray tracing", unit="UE") if show_progress else None
    try:
        for start in range(0, n_ue, step):
            stop = min(start + step, n_ue)
            pw, th, ph, ok = _trace_chunk(scene, pos[start:stop], max_depth=max_depth, samples=samples, seed=seed,
                                          diffraction=diffraction)
            pw = np.where(ok, pw, -1.0)                       # invalid slots sort last
            # Strongest first; ties broken by angles so the order never depends on slot order.
            order = np.lexsort((ph, th, -pw), axis=-1)
            order = order[:, :max_paths]
            pw, th, ph, ok = (np.take_along_axis(v, order, axis=1) for v in (pw, th, ph, ok))
            k = pw.shape[1]
            power[start:stop, :k] = np.where(ok, pw, 0.0)
            zenith[start:stop, :k] = np.where(ok, th, 0.0)
            azimuth[start:stop, :k] = np.where(ok, ph, 0.0)
            n_paths[start:stop] = ok.sum(axis=1)
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()
        scene.remove(list(scene.receivers))
    return {"power": power, "zenith": zenith, "azimuth": azimuth, "n_paths": n_paths}
