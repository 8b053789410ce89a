"""Claims that can fail: what a paper (or our code) states, checked against a run's ``results``.

A :class:`Claim` has a kind:

- ``paper``: a result the paper reports (who beats whom, by how much);
- ``analytic``: a count or a formula (operation counts, bit budgets);
- ``invariant``: a property of our code that must hold on any data (exact decoding, bounds);
- ``target``: what a method of ours (not a paper's) is built to reach, e.g. a share of a
  reference's rate at a tenth of its cost.

Its ``check(results)`` returns an :class:`Outcome`: the verdict, the numbers it rests on, our
number (``ours``) comparable to the paper's (``Claim.paper_value``), and, for experiments that
run several seeds, the mean ``margin`` by which the claim holds (positive: it holds) and the
``spread`` of that margin over seeds. The rules every verdict follows (:func:`check_claims`):

- a verdict computed on nothing is FAIL with the reason: a checker raises :class:`NothingToCheck`
  (through :func:`require`) on an empty loop, and a missing key is a FAIL too;
- a margin smaller than its spread over seeds is a TIE, which is not a PASS;
- a checker that crashes is a FAIL naming the exception.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("paper", "analytic", "invariant", "target")
STATUSES = ("PASS", "FAIL", "TIE")


class NothingToCheck(Exception):
    """A checker found nothing to compare (empty list, no points, no seeds)."""


@dataclass(frozen=True)
class Outcome:
    """What a checker measured.

    Attributes:
        passed: whether the statement holds on the (seed-mean) numbers.
        measured: a short text with the numbers the verdict rests on.
        ours: our number comparable to :attr:`Claim.paper_value` (same quantity and unit).
        margin: by how much the statement holds (positive) or fails (negative), mean over seeds.
        spread: standard deviation of ``margin`` over seeds (``None`` with one seed).
    """

    passed: bool
    measured: str
    ours: float | None = None
    margin: float | None = None
    spread: float | None = None


@dataclass(frozen=True)
class Claim:
    """A statement checked against an experiment's ``results``.

    Attributes:
        statement: the statement, as a reader would say it.
        check: ``results -> Outcome`` (a ``(passed, measured)`` pair is accepted too).
        kind: ``"paper"``, ``"analytic"``, ``"invariant"`` or ``"target"``.
        paper_value: the paper's own number for the quantity in ``Outcome.ours``.
        paper_text: where that number is and what it measures (e.g. "Fig. 10a: Active MAE −30 %").
        diagnosis: why the claim does not hold on our data, in one or two sentences, once a run
            has shown it (``REPRODUCTION.md`` prints it beside a verdict that is not a PASS).
    """

    statement: str
    check: Callable[[Mapping[str, Any]], Outcome | tuple[bool, str]]
    kind: str = "paper"
    paper_value: float | None = None
    paper_text: str | None = None
    diagnosis: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.statement!r}: kind must be one of {KINDS}, got {self.kind!r}")


@dataclass
class ClaimVerdict:
    """One claim checked: statement, kind, PASS / FAIL / TIE, measured numbers, ours vs the paper's."""

    statement: str
    kind: str
    status: str
    measured: str
    ours: float | None = None
    paper_value: float | None = None
    paper_text: str | None = None
    margin: float | None = None
    spread: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def relative_gap(self) -> float | None:
        """``(ours − paper) / |paper|`` where both exist."""
        if self.ours is None or self.paper_value is None or self.paper_value == 0 or not math.isfinite(self.ours):
            return None
        return (self.ours - self.paper_value) / abs(self.paper_value)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["relative_gap"] = self.relative_gap
        return d

    def lines(self) -> list[str]:
        """The verdict as ``verify`` prints it."""
        out = [f"[{self.status}] ({self.kind}) {self.statement}", f"       measured: {self.measured}"]
        if self.margin is not None and self.spread is not None:
            out.append(f"       margin {self.margin:+.4g}, spread over seeds {self.spread:.3g}")
        if self.paper_value is not None:
            ours = "n/a" if self.ours is None else f"{self.ours:.4g}"
            gap = "" if self.relative_gap is None else f" (gap {100 * self.relative_gap:+.0f} %)"
            out.append(f"       ours {ours} vs paper {self.paper_value:.4g}{gap}"
                       + (f"  [{self.paper_text}]" if self.paper_text else ""))
        return out


def status_of(outcome: Outcome) -> str:
    """PASS / FAIL, or TIE when the margin is inside its spread over seeds."""
    if outcome.margin is not None and outcome.spread is not None and outcome.spread > 0 \
            and abs(outcome.margin) < outcome.spread:
        return "TIE"
    return "PASS" if outcome.passed else "FAIL"


def check_claim(claim: Claim, results: Mapping[str, Any]) -> ClaimVerdict:
    """Evaluate one claim on ``results`` (module docstring for the rules)."""
    base = {"statement": claim.statement, "kind": claim.kind, "paper_value": claim.paper_value,
            "paper_text": claim.paper_text}
    if not results:
        return ClaimVerdict(**base, status="FAIL", measured="nothing to check: the results are empty")
    try:
        out = claim.check(results)
    except NothingToCheck as exc:
        return ClaimVerdict(**base, status="FAIL", measured=f"nothing to check: {exc}")
    except KeyError as exc:
        return ClaimVerdict(**base, status="FAIL", measured=f"nothing to check: results lack {exc}")
    except (TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError,
            statistics.StatisticsError) as exc:
        return ClaimVerdict(**base, status="FAIL", measured=f"could not be checked: {type(exc).__name__}: {exc}")
    if isinstance(out, tuple):
        out = Outcome(bool(out[0]), str(out[1]))
    if not isinstance(out, Outcome):
        return ClaimVerdict(**base, status="FAIL",
                            measured=f"could not be checked: the checker returned {type(out).__name__}")
    return ClaimVerdict(**base, status=status_of(out), measured=out.measured,
                        ours=None if out.ours is None else float(out.ours),
                        margin=None if out.margin is None else float(out.margin),
                        spread=None if out.spread is None else float(out.spread))


def check_claims(claims: Iterable[Claim], results: Mapping[str, Any]) -> list[ClaimVerdict]:
    """Evaluate each claim on ``results``."""
    return [check_claim(c, results) for c in claims]


# ---------------------------------------------------------------------------------------------
# building blocks for checkers
# ---------------------------------------------------------------------------------------------

def require(items: Any, what: str) -> Any:
    """``items`` itself, or :class:`NothingToCheck` naming ``what`` when it is empty or None."""
    if items is None or (hasattr(items, "__len__") and len(items) == 0):
        raise NothingToCheck(f"no {what}")
    return items


def all_of(flags: Iterable[bool], what: str) -> bool:
    """``all(flags)``, but :class:`NothingToCheck` when there are none (``all([])`` is True)."""
    flags = list(flags)
    require(flags, what)
    return all(flags)


def seed_stats(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard deviation (``None`` for one value) of per-seed values."""
    values = [float(v) for v in require(list(values), "seeds")]
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def margin_outcome(margins_per_seed: Sequence[float], measured: str, *, ours: float | None = None) -> Outcome:
    """An outcome from per-seed margins (positive: the claim holds on that seed): the verdict is
    the sign of their mean, and their spread decides TIE."""
    mean, spread = seed_stats(margins_per_seed)
    text = measured
    if spread is not None:
        text += f"; margin per seed {', '.join(f'{m:+.3g}' for m in margins_per_seed)}"
    return Outcome(mean > 0, text, ours=ours, margin=mean, spread=spread)


def worst_margin(outcomes: Sequence[Outcome], measured: str, *, ours: float | None = None) -> Outcome:
    """Combine several comparisons that must all hold: the one with the smallest margin decides
    (its spread travels with it), and the texts are joined."""
    require(outcomes, "comparisons")
    with_margin = [o for o in outcomes if o.margin is not None]
    passed = all(o.passed for o in outcomes)
    if not with_margin:
        return Outcome(passed, measured, ours=ours)
    # a TIE in any comparison makes the whole claim undecided unless another one fails outright
    decisive = min(with_margin, key=lambda o: o.margin)
    ties = [o for o in with_margin if o.spread and abs(o.margin) < o.spread]
    if ties and passed:
        decisive = ties[0]
    return Outcome(passed, measured, ours=ours, margin=decisive.margin, spread=decisive.spread)


__all__ = ["KINDS", "STATUSES", "Claim", "ClaimVerdict", "NothingToCheck", "Outcome", "all_of", "check_claim",
           "check_claims", "margin_outcome", "require", "seed_stats", "status_of", "worst_margin"]
