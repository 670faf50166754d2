"""Reusable building blocks for plugins: layers that more than one model family needs.

Why here and not in a plugin: a plugin may import a sibling plugin only by declaring it as a
dependency, so a block that several families share (the ResNet backbone of DETR, and of Conditional
DETR, Table Transformer and MaskFormer, which use the same timm / Transformers-native ResNets) lives
in core once, and each family imports it from here without depending on another family's plugin.

One module per framework, as everywhere in core: ``resnet_spec`` is framework-free, ``resnet`` is
PyTorch, ``resnet_tf`` TensorFlow, ``resnet_flax`` Flax. This package imports none of them, so
``import polyformers`` (and ``import polyformers.layers``) still imports no framework.
"""
