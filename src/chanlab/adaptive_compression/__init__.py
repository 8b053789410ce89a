"""Rate–distortion neural CSI compression (Sattari, Gündüz, Svensson): backbone codec, environments, fine-tuning."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "codec": ("CsiCodec", "csi_to_real", "real_to_csi"),
    "environments": ("ENVIRONMENTS", "environment_csi", "split_40_40_20"),
    "finetune": ("FineTuning", "SCHEMES", "evaluate_adapted", "fine_tune", "quantize_update"),
    "update_stream": ("FineTunedReceiver", "encode_finetuned"),
    "model": ("CompressorSpec", "RDCompressor", "distortion", "rd_loss"),
    "training": ("TrainHistory", "evaluate_rd", "train_rd"),
})
