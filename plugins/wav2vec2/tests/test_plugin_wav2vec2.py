"""The Wav2Vec2 plugin's metadata and hooks agree, and it works with only core installed beside it."""

from __future__ import annotations

import json
import subprocess
import sys


def test_plugin_conforms():
    from polyformers.testing.conformance import check_plugin

    assert check_plugin("polyformers-wav2vec2") == []


def test_lazy_names_and_isolation():
    code = (
        "import json, sys, polyformers; "
        "from polyformers import Wav2Vec2Config; "
        "c = Wav2Vec2Config(); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'jax', 'polyformers_bert', 'polyformers_wav2vec2'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["polyformers_wav2vec2"]
