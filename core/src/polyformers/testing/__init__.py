"""polyformers' conformance kit: reusable test mixins every plugin's suite runs with a tiny config.

- :mod:`polyformers.testing.model_tester`: ``ModelTesterMixin`` (PyTorch models: shapes, outputs,
  save/load, base<->head loading, loading reports, training step) and ``ConfigTesterMixin``.
- :mod:`polyformers.testing.tf_model_tester` / :mod:`polyformers.testing.flax_model_tester`:
  ``TFModelTesterMixin`` and ``FlaxModelTesterMixin``, the same checks for TensorFlow and Flax models.
- :mod:`polyformers.testing.parity`: ``ParityTesterMixin``, round trips with Hugging Face
  Transformers as a test-only oracle.
- :mod:`polyformers.testing.tokenizer_tester`: ``TokenizerTesterMixin``.
- :mod:`polyformers.testing.plugin_kit`: fake installed distributions for plugin-loader tests.

Importing this package imports no framework; each module imports what it tests.
"""
