"""Registered experiments. Importing this package registers all of them."""

from chanlab.experiments import channel_demo  # noqa: F401
from chanlab.experiments import adaptive_compression_backbone  # noqa: F401
from chanlab.experiments import adaptive_compression_finetune  # noqa: F401
from chanlab.experiments import cellfree  # noqa: F401
from chanlab.experiments import csi_feedback  # noqa: F401
from chanlab.experiments import gridization  # noqa: F401
from chanlab.experiments import gridization_field  # noqa: F401
from chanlab.experiments import precoding  # noqa: F401
from chanlab.experiments import precoding_scalable  # noqa: F401
