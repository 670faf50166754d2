import torch
from torch import nn

from polyformers import PreTrainedModel

from .configuration import TinyMlpConfig


class TinyMlpModel(PreTrainedModel):
    config_class = TinyMlpConfig

    def __init__(self, config: TinyMlpConfig):
        super().__init__(config)
        self.layers = nn.ModuleList(nn.Linear(config.hidden_size, config.hidden_size) for _ in range(config.num_hidden_layers))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x
