"""Reusable network blocks."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "conv_compressor": ("ConvDecoder", "ConvEncoder", "default_pools"),
    "csinet": ("AUTOENCODER_NAMES", "CsiAutoencoder", "CsiNet", "CsiNetDecoder", "CsiNetEncoder",
               "CsiNetPro", "CsiNetProDecoder", "CsiNetVar1", "CsiNetVar2", "RefineNetBlock", "TransNet",
               "TransNetDecoder", "TransNetEncoder", "make_autoencoder"),
    "egat": ("EgatLayer", "EgatPrecoder", "egat_reference_loop"),
    "mlp": ("SkipMLP",),
    "residual_cnn": ("ConvUnit", "ResidualCNN", "conv_output_size", "size_preserving_padding"),
})
