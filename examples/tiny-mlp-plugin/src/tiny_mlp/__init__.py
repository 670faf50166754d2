"""tiny-mlp-plugin: the smallest useful polyformers plugin (see the repository README)."""
