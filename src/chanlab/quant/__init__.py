"""Quantizers and coding shared by the capabilities: learned entropy models, range coding."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "factorized_prior": ("FactorizedPrior",),
    "sparse_codebook": ("SparseCodebook",),
    "range_coding": ("CodingTables", "decode_symbols", "encode_symbols"),
})
