"""Named data sources behind ``chanlab data generate SOURCE``.

Each source declares its parameters (with types, defaults and help, from which the CLI builds
its flags) and a ``build`` function returning the arrays to store. Datasets are generated once
per (source, parameters, seed, device type) and served from the cache afterwards.

Large sets are generated in fixed chunks of :data:`CHUNK` samples, each seeded from
``(seed, chunk index)``, so memory stays bounded and a dataset depends only on its parameters
and seed (not on batch sizes).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chanlab.channels.angular_delay import to_angular_delay
from chanlab.core.atomic import atomic_path
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress

CHUNK = 1000


@dataclass(frozen=True)
class SourceParam:
    """One parameter of a data source (a CLI flag ``--name-with-dashes``)."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class DataSource:
    """A generator of a channel dataset: ``build(params, seed, device) -> {name: array}``."""

    name: str
    summary: str
    params: tuple[SourceParam, ...]
    build: Callable[[dict[str, Any], int, torch.device], dict[str, torch.Tensor]]
    describe: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda p: {})
    #: builds through chunks seeded from (seed, chunk index), so ``--workers`` can share them out
    chunked: bool = True

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults filled in, unknown names and bad choices rejected."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ConfigError(f"source {self.name!r}: unknown parameter {unknown[0]!r}; "
                              f"valid: {', '.join(known)}")
        params = {}
        for p in self.params:
            value = given.get(p.name, p.default)
            if value is not None and p.choices is not None and value not in p.choices:
                raise ConfigError(f"source {self.name!r}: {p.name} must be one of "
                                  f"{', '.join(map(str, p.choices))}, got {value!r}")
            params[p.name] = value
        return params


def chunk_size() -> int:
    """Samples per chunk: :data:`CHUNK`, or ``$CHANLAB_DATA_CHUNK`` (tests; it changes the data, so
    a non-default size is part of the cache key)."""
    env = os.environ.get("CHANLAB_DATA_CHUNK")
    if not env:
        return CHUNK
    try:
        size = int(env)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"CHANLAB_DATA_CHUNK: expected a positive number of samples, got {env!r}")
    return size


def chunk_seeds(seed: int, num: int) -> list[tuple[int, int]]:
    """``[(chunk size, chunk seed), ...]`` covering ``num`` samples."""
    size = chunk_size()
    sizes = [size] * (num // size) + ([num % size] if num % size else [])
    return [(n, int(np.random.SeedSequence([seed, i]).generate_state(1)[0]))
            for i, n in enumerate(sizes)]


# (worker, n_workers) while a worker process builds its shard: it makes chunks worker, worker + n, ...
_SHARD: tuple[int, int] | None = None


def _in_chunks(num: int, seed: int, desc: str, make: Callable[[int, int], torch.Tensor]) -> torch.Tensor:
    chunks = list(enumerate(chunk_seeds(seed, num)))
    if _SHARD is not None:
        chunks = [c for c in chunks if c[0] % _SHARD[1] == _SHARD[0]]
    parts = []
    with progress(total=sum(n for _, (n, _) in chunks), desc=desc, unit="sample") as bar:
        for _, (n, s) in chunks:
            parts.append(make(n, s).cpu())
            bar.update(n)
    if not parts:
        raise ConfigError(f"{desc}: no chunk to make in this shard")
    return torch.cat(parts)


def _build_shard(source: str, resolved: dict[str, Any], seed: int, device: str, worker: int,
                 n_workers: int) -> dict[str, np.ndarray]:
    """A worker process's share of a dataset: its chunks, in order (top level: picklable)."""
    global _SHARD
    _SHARD = (worker, n_workers)
    torch.set_num_threads(1)
    try:
        out = get_source(source).build(resolved, seed, torch.device(device))
    finally:
        _SHARD = None
    return {k: (v.cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in out.items()}


def _build_sharded(source: str, resolved: dict[str, Any], seed: int, device: torch.device,
                   workers: int) -> dict[str, torch.Tensor]:
    """The dataset built by ``workers`` processes, chunk ``i`` by worker ``i % workers``, then put back
    in chunk order: the same arrays as one process builds (every chunk has its own seed)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    sizes = [n for n, _ in chunk_seeds(seed, resolved["num"])]
    workers = min(workers, len(sizes))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        shards = list(pool.map(_build_shard, *zip(*[(source, resolved, seed, str(device), w, workers)
                                                     for w in range(workers)])))
    out = {}
    for key in shards[0]:
        pieces = [np.split(shard[key], np.cumsum([sizes[i] for i in range(w, len(sizes), workers)])[:-1])
                  for w, shard in enumerate(shards)]
        ordered = [pieces[i % workers][i // workers] for i in range(len(sizes))]
        out[key] = torch.from_numpy(np.concatenate(ordered))
    return out


_ARRAY = (
    SourceParam("n_ant", int, 32, "BS antennas"),
    SourceParam("array", str, "ula", "BS array type", ("ula", "upa")),
    SourceParam("n_rows", int, None, "UPA rows (must divide n_ant)"),
    SourceParam("spacing", float, 0.5, "element spacing in wavelengths"),
    SourceParam("carrier_frequency", float, 3.5e9, "carrier frequency in Hz"),
)
_TIME = (
    SourceParam("speed", float, 0.0, "user speed in m/s (users move along the --n-time snapshots)"),
    SourceParam("n_time", int, 1, "snapshots per sample; > 1 adds a time axis: [num, n_time, ...]"),
    SourceParam("time_step", float, 1e-3, "time between snapshots in s"),
)
_OFDM = (
    SourceParam("n_sc", int, 1024, "subcarriers"),
    SourceParam("subcarrier_spacing", float, 30e3, "subcarrier spacing in Hz"),
    SourceParam("n_delay", int, None, "keep the first N delay taps of the angular-delay CSI "
                                      "(stores H_ad [num, n_ant, n_delay]); omitted: stores H [num, n_ant, n_sc]"),
)
_COMMON = (SourceParam("num", int, 1000, "number of samples (drops)"),)


_ARRAY_NAMES = ("n_ant", "array", "n_rows", "spacing", "carrier_frequency")
_OFDM_NAMES = ("n_sc", "subcarrier_spacing")
_TIME_NAMES = ("speed", "n_time", "time_step")
_CDL_NAMES = ("model", "delay_spread", "yaw_spread")


def _pick(p: Mapping[str, Any], *groups: tuple[str, ...]) -> dict[str, Any]:
    """The generator keyword arguments named in ``groups``, taken from the resolved parameters."""
    return {name: p[name] for group in groups for name in group}


def _angular_delay_any(h: torch.Tensor, n_delay: int) -> torch.Tensor:
    """:func:`to_angular_delay` on ``[..., n_ant, n_sc]`` (a time axis is folded into the batch)."""
    flat = to_angular_delay(h.reshape(-1, *h.shape[-2:]), n_delay)
    return flat.reshape(*h.shape[:-1], n_delay)


def _ofdm_output(h_of: Callable[[int, int], torch.Tensor], p: Mapping[str, Any], seed: int,
                 desc: str) -> dict[str, torch.Tensor]:
    n_delay = p["n_delay"]
    if n_delay is None:
        return {"H": _in_chunks(p["num"], seed, desc, h_of)}
    return {"H_ad": _in_chunks(p["num"], seed, desc, lambda n, s: _angular_delay_any(h_of(n, s), n_delay))}


def _build_cdl(p: dict[str, Any], seed: int, device: torch.device) -> dict[str, torch.Tensor]:
    from chanlab.channels.sionna_phy import generate_cdl

    kwargs = _pick(p, _CDL_NAMES, _ARRAY_NAMES, _OFDM_NAMES, _TIME_NAMES)
    return _ofdm_output(lambda n, s: generate_cdl(n, seed=s, device=device, show_progress=False, **kwargs),
                        p, seed, f"CDL-{p['model']}")


def _scenario_builder(scenario: str):
    def build(p: dict[str, Any], seed: int, device: torch.device) -> dict[str, torch.Tensor]:
        from chanlab.channels.sionna_phy import generate_scenario

        kwargs = _pick(p, _ARRAY_NAMES, _OFDM_NAMES, _TIME_NAMES)
        return _ofdm_output(lambda n, s: generate_scenario(n, scenario=scenario, seed=s, device=device,
                                                           show_progress=False, **kwargs),
                            p, seed, scenario.upper())

    return build


def _build_multiuser(p: dict[str, Any], seed: int, device: torch.device) -> dict[str, torch.Tensor]:
    from chanlab.channels.sionna_phy import generate_multiuser

    kwargs = _pick(p, _CDL_NAMES, _ARRAY_NAMES, ("polarization",))
    h_of = lambda n, s: generate_multiuser(n, n_users=p["n_users"], source=p["channel"],  # noqa: E731
                                           seed=s, device=device, show_progress=False, **kwargs)
    return {"H_mu": _in_chunks(p["num"], seed, f"multi-user {p['channel']}", h_of)}


def _build_cellfree(p: dict[str, Any], seed: int, device: torch.device) -> dict[str, torch.Tensor]:
    from chanlab.channels.cellfree import generate_cellfree

    drop = generate_cellfree(p["num"], n_aps=p["n_aps"], n_ant=p["n_ant"], n_users=p["n_users"],
                             area=p["area"], shadowing_db=p["shadowing_db"], error_level=p["error_level"],
                             seed=seed, device=device)
    return {"h_hat": drop.h_hat, "h": drop.h, "eps": drop.eps, "beta": drop.beta,
            "ap_pos": drop.ap_pos, "user_pos": drop.user_pos}


def _describe_ofdm(p: Mapping[str, Any]) -> dict[str, Any]:
    time = "n_time, " if p["n_time"] > 1 else ""
    if p["n_delay"] is None:
        return {"domain": "spatial-frequency", "layout": f"H [num, {time}n_ant, n_sc]"}
    return {"domain": "angular-delay", "layout": f"H_ad [num, {time}n_ant, n_delay]"}


_CDL_EXTRA = (
    SourceParam("model", str, "C", "CDL model", ("A", "B", "C", "D", "E")),
    SourceParam("delay_spread", float, 300e-9, "RMS delay spread in s"),
    SourceParam("yaw_spread", float, 0.0, "per-sample BS yaw, uniform in ±this many degrees "
                                          "(spreads the fixed CDL angles)"),
)

SOURCES: dict[str, DataSource] = {
    s.name: s for s in (
        DataSource("cdl", "3GPP CDL A–E MIMO-OFDM CSI (Sionna PHY)",
                   _COMMON + _CDL_EXTRA + _ARRAY + _OFDM + _TIME, _build_cdl,
                   _describe_ofdm),
        DataSource("umi", "3GPP UMi street canyon with random topologies (Sionna PHY)",
                   _COMMON + _ARRAY + _OFDM + _TIME, _scenario_builder("umi"),
                   _describe_ofdm),
        DataSource("uma", "3GPP UMa with random topologies (Sionna PHY)",
                   _COMMON + _ARRAY + _OFDM + _TIME, _scenario_builder("uma"),
                   _describe_ofdm),
        DataSource("rma", "3GPP RMa (rural macro) with random topologies (Sionna PHY)",
                   _COMMON + _ARRAY + _OFDM + _TIME, _scenario_builder("rma"),
                   _describe_ofdm),
        DataSource("inh", "3GPP InH indoor office: ceiling BS, users within 20 m (Sionna PHY)",
                   _COMMON + _ARRAY + _OFDM + _TIME, _scenario_builder("inh"),
                   _describe_ofdm),
        DataSource("multiuser", "narrowband multi-user drops H_mu [num, n_users, n_ant]",
                   _COMMON + (SourceParam("n_users", int, 4, "users per drop"),
                              SourceParam("channel", str, "cdl", "channel model family",
                                          ("cdl", "umi", "uma", "rma", "inh")),
                              SourceParam("polarization", str, "single",
                                          "BS ports per element: single (V) or dual (±45° cross; n_ant = 2 x elements)",
                                          ("single", "dual")))
                   + _CDL_EXTRA + _ARRAY, _build_multiuser),
        DataSource("cellfree", "cell-free drops with bounded CSI error (ĥ, h, ε) [num, n_users, n_aps, n_ant]",
                   _COMMON + (SourceParam("n_aps", int, 16, "access points Q"),
                              SourceParam("n_ant", int, 4, "antennas per AP M"),
                              SourceParam("n_users", int, 16, "single-antenna users I"),
                              SourceParam("area", float, 1000.0, "side of the square area in m"),
                              SourceParam("shadowing_db", float, 8.0, "log-normal shadowing std in dB"),
                              SourceParam("error_level", float, 0.1, "CSI error level η = ‖Δh‖/‖h‖")),
                   _build_cellfree, chunked=False),
    )
}


def get_source(name: str) -> DataSource:
    """The data source called ``name``; ConfigError listing the known ones otherwise."""
    if name not in SOURCES:
        raise ConfigError(f"unknown data source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


def _check_out(out: Path, source: str) -> None:
    """Refuse an ``out`` that cannot be written, before minutes of generation rather than after."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as {out / (source + '.h5')}")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"Not a directory (a file is in the way of the folder for "
                                 f"{out.name})", str(folder))
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied", str(out))


def generate_dataset(source: str, params: Mapping[str, Any], *, seed: int = 0, device: str | torch.device = "cpu",
                     out: str | Path | None = None, cache: Path | None = None,
                     workers: int = 1) -> tuple[Path, bool]:
    """Generate (or fetch from the cache) a dataset; optionally copy it to ``out``.

    ``out`` is a file name (its folders are created). An existing directory is refused with a
    ConfigError that suggests ``DIR/<source>.h5`` rather than guessing a name inside it, so that
    two runs with different parameters never silently overwrite the same guessed file. ``out`` is
    checked before anything is generated: a directory, a file in the way of its folder or a
    folder that cannot be written fails at once, naming ``out``.

    ``workers > 1`` builds the chunks of a chunked source (:data:`CHUNK` samples each, seeded
    from ``(seed, chunk index)``) in that many processes; the dataset is the same as one process
    makes, and the same cache entry. Sources that are not chunked (``cellfree``) build in one.

    Returns:
        ``(path, from_cache)``: the file written (``out`` if given, else the cache file) and
        whether the cache already held it.
    """
    from chanlab.channels.store import cached_dataset
    from chanlab.core.device import select_device

    src = get_source(source)
    resolved = src.resolve(params)
    if resolved.get("num") is not None and resolved["num"] < 1:
        raise ConfigError(f"num: expected a positive number of samples, got {resolved['num']}")
    if out is not None:
        _check_out(Path(out), source)
    dev = select_device(device)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers: expected a whole number of processes >= 1, got {workers!r}")
    key_params = dict(resolved, device_type=dev.type)
    if chunk_size() != CHUNK:
        key_params["chunk"] = chunk_size()
    attrs = dict(src.describe(resolved), source=source, summary=src.summary)

    def build():
        if workers > 1 and src.chunked and len(chunk_seeds(seed, resolved["num"])) > 1:
            return _build_sharded(source, resolved, seed, dev, workers)
        return src.build(resolved, seed, dev)

    path, hit = cached_dataset(f"chanlab.data.{source}", key_params, seed, build, attrs=attrs, cache=cache)
    if out is None:
        return path, hit
    out = Path(out)
    with atomic_path(out) as tmp:
        shutil.copyfile(path, tmp)
    return out, hit
