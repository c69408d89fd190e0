"""Training (NoGAN on fastai v2): data, losses, callbacks, the three phase functions, export.

Import the submodules you need; this package file imports nothing, so ``training.evaluate`` and
``training.export`` (no fastai) stay usable where fastai is not installed:

- :mod:`.data` photos -> packed arrays -> (grey input, colour target) batches on the GPU, crappify
- :mod:`.losses` feature (perceptual) + pixel loss on EfficientNet-Lite0 (or VGG16) features
- :mod:`.phases` ``pretrain_generator``, ``pretrain_critic``, ``train_gan`` with one config each
- :mod:`.callbacks` per-epoch checkpoints (resume), validation metrics, sample grids
- :mod:`.evaluate` validation metrics (also used by ``colorize bench-quality``)
- :mod:`.export` fp16 safetensors + weight record
"""
