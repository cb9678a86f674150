"""torch.hub entry points of avssl: ``torch.hub.load("<owner>/avssl", "avssl_encoder", "<folder or user/repo>")``.

An encoder folder (``avssl export``) or a Hugging Face Hub id; the encoder comes back frozen, in
eval mode, with its input settings (``encoder.input``) and ``encoder.backbone`` the module.
"""

dependencies = ["torch", "safetensors", "avssl"]


def avssl_encoder(path_or_id: str):
    """The pre-trained avssl encoder at ``path_or_id`` (:func:`avssl.load_encoder`)."""
    from avssl.evaluation.encoder import load_encoder

    return load_encoder(path_or_id, field_name="avssl_encoder")
