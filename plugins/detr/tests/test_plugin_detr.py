"""The DETR plugin's metadata and hooks agree; configs and the image processor import no framework."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def test_plugin_conforms():
    from polyformers.testing.conformance import check_plugin

    problems = check_plugin("polyformers-detr")
    # modeling_detr.py is written separately; until it lands its classes cannot be imported.
    modeling_ready = (Path(__file__).parents[1] / "src" / "polyformers_detr" / "modeling_detr.py").exists()
    assert problems == [] or (not modeling_ready and all("modeling_detr" in p for p in problems)), problems


def test_lazy_names_and_isolation():
    code = (
        "import json, sys, numpy as np, polyformers; "
        "from polyformers import DetrConfig, DetrImageProcessor; "
        "c = DetrConfig(); c.resnet; "
        "DetrImageProcessor()(np.zeros((3, 20, 30), np.uint8)); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'jax', 'polyformers_bert', 'polyformers_wav2vec2', 'polyformers_detr'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["polyformers_detr"]


def test_auto_image_processor_by_model_type(tmp_path):
    from polyformers import AutoImageProcessor
    from polyformers_detr.image_processing_detr import DetrImageProcessor

    settings = json.loads((FIXTURES / "preprocessor_v5_default" / "preprocessor_config.json").read_text())
    del settings["image_processor_type"]
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(settings))
    (tmp_path / "config.json").write_text((FIXTURES / "config_v5_timm" / "config.json").read_text())
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is DetrImageProcessor
