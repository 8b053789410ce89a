"""Quantizers and coding shared by the capabilities: learned entropy models, range coding,
scalar codebooks with bit allocation, bit packing, uniform and shared-codebook vector quantizers."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "factorized_prior": ("FactorizedPrior",),
    "sparse_codebook": ("SparseCodebook",),
    "range_coding": ("CodingTables", "decode_symbols", "encode_symbols"),
    "scalar_codebooks": ("BitAllocation", "ScalarCodebooks", "allocate_bits", "codeword_spacing",
                         "feedback_loss", "lloyd_max"),
    "bit_packing": ("pack_indices", "stream_bits", "unpack_indices"),
    "uniform": ("UniformQuantizer",),
    "vector": ("SharedVectorQuantizer",),
    "residual_vq": ("ResidualVQ", "differentiable_kmeans"),
})
