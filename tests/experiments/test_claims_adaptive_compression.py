"""The claims of the adaptive-compression experiments on synthetic results: PASS, a doctored FAIL, FAIL on nothing."""

import copy

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment


def _claim(name, start):
    (claim,) = [c for c in get_experiment(name).claims if c.statement.startswith(start)]
    return claim


def _status(claim, results):
    return check_claim(claim, results).status


def _all_claims_fail_on_nothing(name, empty):
    for claim in get_experiment(name).claims:
        assert _status(claim, {}) == "FAIL", claim.statement
        assert _status(claim, {"sizes": {}}) == "FAIL", claim.statement
        assert _status(claim, empty) == "FAIL", claim.statement


# ----- backbone-rd and shift: the layout of CsiCodec.evaluate rows, one list per field over λ ------------

def _curve(bits=(100.0, 200.0, 400.0), nmse=(-5.0, -8.0, -12.0), exact=True, excess=-3.0):
    n = len(bits)
    return {"nmse": [10 ** (v / 10) for v in nmse], "nmse_db": list(nmse), "bits_real": list(bits),
            "bits_entropy": [b - 4 for b in bits], "bytes_gap": [0.5] * n, "bytes_gap_max_excess": [excess] * n,
            "exact": [exact] * n, "n": [300] * n, "lams": [5e3, 1e4, 5e4][:n], "compression_ratio": 16,
            "n_train": 800}


def _backbone():
    return {"sizes": {"64x64": _curve(), "512x256": _curve((300.0, 500.0, 900.0), (-7.0, -9.0, -13.0))}}


def _empty_backbone():
    c = {k: ([] if isinstance(v, list) else v) for k, v in _curve().items()}
    return {"sizes": {"64x64": c}}


def test_backbone_claims():
    name = "adaptive_compression/backbone-rd"
    monotone = _claim(name, "Larger λ gives a higher rate")
    exact = _claim(name, "Decoding the bytes")
    gap = _claim(name, "Every CSI's real size")
    assert (monotone.kind, exact.kind, gap.kind) == ("paper", "invariant", "invariant")
    for claim in (monotone, exact, gap):
        assert _status(claim, _backbone()) == "PASS", claim.statement
    v = check_claim(monotone, _backbone())
    assert v.margin == pytest.approx(2.0)  # the smallest NMSE step, 512x256 from -7 to -9 dB

    bad = _backbone()
    bad["sizes"]["64x64"]["nmse_db"][2] = -7.0
    assert _status(monotone, bad) == "FAIL"
    bad = _backbone()
    bad["sizes"]["512x256"]["bits_real"] = [300.0, 900.0, 500.0]
    assert _status(monotone, bad) == "FAIL"
    one = _backbone()
    one["sizes"]["64x64"] = _curve((100.0,), (-5.0,))
    assert _status(monotone, one) == "FAIL"

    bad = _backbone()
    bad["sizes"]["512x256"]["exact"][1] = False
    assert _status(exact, bad) == "FAIL"
    bad = _backbone()
    bad["sizes"]["64x64"]["bytes_gap_max_excess"][0] = 2.5
    assert _status(gap, bad) == "FAIL"
    _all_claims_fail_on_nothing(name, _empty_backbone())


def _shift():
    return {"sizes": {"64x64": {"source": _curve(), "street-mobile": _curve(nmse=(-1.0, -2.0, -3.0)),
                                "dynamic-scatterers": _curve(nmse=(-2.0, -4.0, -6.0))}}}


def test_shift_claim():
    claim = _claim("adaptive_compression/shift", "On every shifted environment")
    assert claim.kind == "paper"
    v = check_claim(claim, _shift())
    assert v.status == "PASS" and v.margin == pytest.approx(3.0)
    bad = _shift()
    bad["sizes"]["64x64"]["dynamic-scatterers"]["nmse_db"][2] = -12.5
    assert _status(claim, bad) == "FAIL"
    only_source = {"sizes": {"64x64": {"source": _curve()}}}
    assert _status(claim, only_source) == "FAIL"
    empty = {"sizes": {"64x64": {"source": _empty_backbone()["sizes"]["64x64"],
                                 "street-mobile": _empty_backbone()["sizes"]["64x64"]}}}
    _all_claims_fail_on_nothing("adaptive_compression/shift", empty)


# ----- finetune: per panel (size, environment), one series per scheme ------------------------------------

def _row(bits, nmse, rd_cost=None, update=0.0):
    n = len(bits)
    return {"nmse_db": list(nmse), "bits_real": [b - update for b in bits], "total_bits": list(bits),
            "update_bits": [update * 300] * n, "update_bits_per_csi": [update] * n,
            "rd_cost": list(rd_cost) if rd_cost else [b + 1000 for b in bits], "exact": [True] * n,
            "trainable": [0] * n, "lam": [5e3, 1e4][:n]}


def _panel():
    return {"no-ft": _row([100.0, 250.0], [-2.0, -4.0]), "encoder-only": _row([100.0, 250.0], [-3.0, -5.0]),
            "translation": _row([100.0, 250.0], [-3.0, -4.5]),
            "genie": _row([100.0], [-9.0], [900.0]), "full-uniform": _row([150.0], [-8.0], [1000.0], 50.0),
            "full-gaussian": _row([150.0], [-7.5], [1050.0], 50.0),
            "full-unaware": _row([150.0], [-6.0], [1200.0], 50.0), "n_finetune": 100, "n_eval": 300}


def _finetune():
    return {"sizes": {"64x64": {"street-mobile": _panel(), "dynamic-scatterers": _panel()}}}


def _empty_finetune():
    panel = {k: ({f: [] for f in v} if isinstance(v, dict) else v) for k, v in _panel().items()}
    return {"sizes": {"64x64": {"street-mobile": panel}}}


def test_finetune_claims():
    name = "adaptive_compression/finetune"
    beats = _claim(name, "On both shifts full-model")
    genie = _claim(name, "The genie")
    aware = _claim(name, "Quantization-aware full-model")
    for claim in (beats, genie, aware):
        assert claim.kind == "paper"
        assert _status(claim, _finetune()) == "PASS", claim.statement
    assert check_claim(beats, _finetune()).margin == pytest.approx(2.5)  # FM-TGP -7.5 vs EO -5.0 @ 250 b
    assert check_claim(genie, _finetune()).margin == pytest.approx(100.0)
    assert check_claim(aware, _finetune()).margin == pytest.approx(2.0)

    bad = _finetune()
    bad["sizes"]["64x64"]["street-mobile"]["encoder-only"]["nmse_db"][1] = -7.8
    assert _status(beats, bad) == "FAIL"
    bad = _finetune()  # no baseline point spends as many bits as FM: nothing shows FM is better
    bad["sizes"]["64x64"]["dynamic-scatterers"]["full-uniform"]["total_bits"] = [400.0]
    assert _status(beats, bad) == "FAIL"
    bad = _finetune()
    bad["sizes"]["64x64"]["street-mobile"]["genie"]["rd_cost"] = [1020.0]
    assert _status(genie, bad) == "FAIL"
    bad = _finetune()
    bad["sizes"]["64x64"]["dynamic-scatterers"]["full-unaware"]["nmse_db"] = [-8.5]
    assert _status(aware, bad) == "FAIL"
    missing = _finetune()
    del missing["sizes"]["64x64"]["street-mobile"]["genie"]
    assert _status(genie, missing) == "FAIL"
    _all_claims_fail_on_nothing(name, _empty_finetune())
    assert _status(beats, {"sizes": {"64x64": {}}}) == "FAIL"


# ----- update-period: one curve per size over the periods ----------------------------------------------

def _period(costs=(5000.0, 4200.0, 4000.0, 4300.0, 4800.0)):
    periods = [1.0, 2.0, 4.0, 8.0, 16.0][:len(costs)]
    best = min(range(len(costs)), key=lambda i: costs[i], default=0)
    return {"sizes": {"64x64": {
        "periods_m": periods, "lam": 5e4, "total_bits": [300.0] * len(costs), "latent_bits": [200.0] * len(costs),
        "update_bits_per_csi": [100.0] * len(costs), "rd_cost": list(costs), "nmse_db": [-8.0] * len(costs),
        "no_ft_nmse_db": [-3.0] * len(costs), "best_period_m": periods[best] if periods else None,
        "interior_optimum": 0 < best < len(costs) - 1, "segment_m": 20.0}}}


def test_update_period_claim():
    (claim,) = get_experiment("adaptive_compression/update-period").claims
    assert claim.kind == "paper" and claim.paper_value is None
    v = check_claim(claim, _period())
    assert v.status == "PASS" and v.margin == pytest.approx(800.0)
    assert _status(claim, _period((5000.0, 4200.0, 4000.0, 3900.0, 3800.0))) == "FAIL"
    # the verdict rests on the costs, not on the run's own interior_optimum flag
    lying = _period((5000.0, 4200.0, 4000.0, 3900.0, 3800.0))
    lying["sizes"]["64x64"]["interior_optimum"] = True
    assert _status(claim, lying) == "FAIL"
    assert _status(claim, _period((5000.0, 4000.0))) == "FAIL"
    _all_claims_fail_on_nothing("adaptive_compression/update-period", _period(()))


# ----- quantization-aware: full-uniform and full-unaware over λ ------------------------------------------

def _aware():
    return {"sizes": {"64x64": {"street-mobile": {
        "full-uniform": _row([150.0, 300.0], [-8.0, -10.0], update=50.0),
        "full-unaware": _row([150.0, 300.0], [-6.0, -9.0], update=50.0)}}}}


def test_quantization_aware_claim():
    (claim,) = get_experiment("adaptive_compression/quantization-aware").claims
    assert claim.kind == "paper"
    v = check_claim(claim, _aware())
    assert v.status == "PASS" and v.margin == pytest.approx(1.0)
    bad = _aware()
    bad["sizes"]["64x64"]["street-mobile"]["full-unaware"]["nmse_db"][1] = -10.5
    assert _status(claim, bad) == "FAIL"
    empty = copy.deepcopy(_aware())
    for r in empty["sizes"]["64x64"]["street-mobile"].values():
        for k in r:
            r[k] = []
    _all_claims_fail_on_nothing("adaptive_compression/quantization-aware", empty)


# ----- complexity (Table IV): what run_complexity writes per CSI size ------------------------------------

def _complexity(eo=8034, fm=16154, flops=(635_699_200, 40_140_800)):
    sizes = {}
    for label, f in zip(("512x256", "64x64"), flops):
        sizes[label] = {"encoder-only": {"trainable": eo, "flops": f}, "full-model": {"trainable": fm, "flops": f},
                        "genie": {"trainable": fm, "flops": f}, "translation": {"trainable": 1200, "flops": 2 * f},
                        "decoder_side_parameters": fm - eo}
    return {"sizes": sizes}


def test_complexity_claims():
    name = "adaptive_compression/complexity"
    half = _claim(name, "Encoder-only fine-tuning trains less than half")
    counts = _claim(name, "Encoder-only and full-model fine-tuning train about")
    light = _claim(name, "The backbone's inference FLOPs")
    assert (half.kind, counts.kind, light.kind) == ("paper", "analytic", "paper")
    assert (half.paper_value, counts.paper_value, light.paper_value) == (0.5, 8e3, 21e6)

    v = check_claim(half, _complexity())
    assert v.status == "PASS" and v.ours == pytest.approx(8034 / 16154)
    # Equal inference FLOPs no longer make it pass: the ratio of trainable parameters decides.
    assert _status(half, _complexity(eo=8100, fm=16154)) == "FAIL"

    v = check_claim(counts, _complexity())
    assert v.status == "PASS" and v.ours == 8034
    assert _status(counts, _complexity(eo=12000, fm=24000)) == "FAIL"

    v = check_claim(light, _complexity())
    assert v.status == "PASS" and v.ours == 40_140_800
    assert _status(light, _complexity(flops=(7e9, 40_140_800))) == "FAIL"

    for claim in (half, counts, light):
        assert _status(claim, {}) == "FAIL" and _status(claim, {"sizes": {}}) == "FAIL"
        assert _status(claim, {"sizes": {"64x64": {}}}) == "FAIL"
