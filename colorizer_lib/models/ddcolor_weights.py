"""Weight records of the released DDColor checkpoints, as data (not yet in :mod:`colorizer_lib.registry`).

``DDCOLOR_WEIGHTS`` holds one dict per weight set whose keys are exactly the fields of
:class:`colorizer_lib.registry.WeightSpec` (``WeightSpec(**record)`` builds the record; a test
checks it), so wiring them in is one line in the registry. ``DDCOLOR_SOURCES`` keeps what a
WeightSpec has no field for: the Hugging Face repository, the pinned revision and file, the
constructor configuration (``config.json``) and other copies.

Sources (the authors' Hugging Face ``PyTorchModelHubMixin`` repositories, Apache-2.0): each holds a
``config.json`` (the constructor arguments) and ``pytorch_model.bin`` (``torch.save`` of the state
dict). Sizes and SHA-256 digests are those of the Hub's LFS records at the pinned revisions, as
several independent projects pin them; ``ddcolor-paper``'s are not known here (its digest is then
recorded on the first verified load, as for DeOldify's files). ModelScope's
``damo/cv_ddcolor_image-colorization`` ``pytorch_model.pt`` is the same model as ``ddcolor`` in
another file (``{'params': state_dict}`` with the legacy ``head_cls`` keys), so it is listed as an
alternative source with its own (unknown) digest, not as a byte-identical mirror.
"""

from __future__ import annotations

_LICENSE = "Apache-2.0 (DDColor's released weights, by Xiaoyang Kang et al., DAMO Academy)"
_HF = "https://huggingface.co/piddnad/{repo}/resolve/{revision}/pytorch_model.bin"
_CONFIG_L = {"encoder_name": "convnext-l", "decoder_name": "MultiScaleColorDecoder", "num_input_channels": 3,
             "input_size": [512, 512], "nf": 512, "num_output_channels": 2, "last_norm": "Spectral",
             "do_normalize": False, "num_queries": 100, "num_scales": 3, "dec_layers": 9}
_CONFIG_T = {**_CONFIG_L, "encoder_name": "convnext-t"}

DDCOLOR_SOURCES: dict[str, dict] = {
    "ddcolor": {
        "hf_repo": "piddnad/ddcolor_modelscope", "revision": "060f67494e31883a4b13cb27f889f3154847ada4",
        "file": "pytorch_model.bin", "config": _CONFIG_L,
        "alternatives": [{
            "url": ("https://modelscope.cn/api/v1/models/damo/cv_ddcolor_image-colorization/repo"
                    "?Revision=master&FilePath=pytorch_model.pt"),
            "layout": "{'params': state_dict} with encoder.arch.head_cls.{weight,bias}", "sha256": None}],
    },
    "ddcolor-paper": {"hf_repo": "piddnad/ddcolor_paper", "revision": "main", "file": "pytorch_model.bin",
                      "config": _CONFIG_L},
    "ddcolor-artistic": {"hf_repo": "piddnad/ddcolor_artistic", "revision": "aa10f72fffc89a6658e37b48556050b4d9a26f63",
                         "file": "pytorch_model.bin", "config": _CONFIG_L},
    "ddcolor-tiny": {"hf_repo": "piddnad/ddcolor_paper_tiny", "revision": "cf9fd99c1d7472689ec7413441c1b799a51866a3",
                     "file": "pytorch_model.bin", "config": _CONFIG_T},
}


def _url(name: str) -> str:
    src = DDCOLOR_SOURCES[name]
    return _HF.format(repo=src["hf_repo"].split("/", 1)[1], revision=src["revision"])


DDCOLOR_WEIGHTS: tuple[dict, ...] = (
    {
        "name": "ddcolor", "aliases": ("ddcolor-modelscope", "ddcolor_modelscope"), "arch": "ddcolor-large",
        "filename": "ddcolor_modelscope.bin", "urls": (_url("ddcolor"),), "size": 911_914_869,
        "sha256": "d81711971ec59200da26d5e8a1afae8dd3778d495ea8ad7a7dadc769f403f7e7",
        "license": _LICENSE, "default_render_factor": 32, "tags": ("image", "video"),
        "description": ("DDColor-L (ConvNeXt-L, 228 M parameters) trained on a cleaned ImageNet: the authors' "
                        "default for photos in general, with natural, vivid colours."),
    },
    {
        "name": "ddcolor-paper", "aliases": ("ddcolor_paper",), "arch": "ddcolor-large",
        "filename": "ddcolor_paper.bin", "urls": (_url("ddcolor-paper"),), "approx_download_mb": 912,
        "license": _LICENSE, "default_render_factor": 32, "tags": ("image",),
        "description": ("DDColor-L exactly as in the paper (trained on ImageNet): for reproducing the paper's "
                        "results; the authors recommend `ddcolor` for other photos."),
    },
    {
        "name": "ddcolor-artistic", "aliases": ("ddcolor_artistic",), "arch": "ddcolor-large",
        "filename": "ddcolor_artistic.bin", "urls": (_url("ddcolor-artistic"),), "size": 911_914_869,
        "sha256": "5a076e84efce59848394f572a105f7b78f7f6e917f615d1ee88537241b96dca3",
        "license": _LICENSE, "default_render_factor": 32, "tags": ("image",),
        "description": ("DDColor-L trained on ImageNet plus many artistic images, without the colourfulness "
                        "loss: more varied colours and fewer odd colour patches (such as red blotches)."),
    },
    {
        "name": "ddcolor-tiny", "aliases": ("ddcolor_paper_tiny", "ddcolor-t"), "arch": "ddcolor-tiny",
        "filename": "ddcolor_paper_tiny.bin", "urls": (_url("ddcolor-tiny"),), "size": 220_372_845,
        "sha256": "8a1277bc90a1bfbb6d2d83933a9a6bc821931879ca93e26e4fcec12165d41fce",
        "license": _LICENSE, "default_render_factor": 32, "tags": ("image", "video"),
        "description": ("DDColor-T (ConvNeXt-T, 55 M parameters), trained like the paper's model: the "
                        "lightest DDColor, 0.4x DDColor-L's work per image, the one to use on a CPU."),
    },
)

__all__ = ["DDCOLOR_SOURCES", "DDCOLOR_WEIGHTS"]
