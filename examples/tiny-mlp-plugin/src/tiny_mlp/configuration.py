from polyformers import PretrainedConfig


class TinyMlpConfig(PretrainedConfig):
    model_type = "tiny-mlp"

    def __init__(self, hidden_size: int = 16, num_hidden_layers: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
