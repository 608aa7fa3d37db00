"""The hook that makes a plugin's feature extractor (`gansweep.feature_extractors`, ExtractorSpec with a
`build`) known to torch-fidelity: registered under its gansweep name the first time an evaluation uses it.
fidelity.calculate asks here for the name to pass as torch-fidelity's `feature_extractor`."""
from __future__ import annotations

from gan_tasks.methods.metric_specs import EXTRACTORS


def fidelity_extractor(name: str) -> str:
    """torch-fidelity's name for the extractor `name`; a plugin's registered with torch-fidelity on first use."""
    spec = EXTRACTORS.get(name)
    if spec.build is None:
        return spec.fidelity_name
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    fid_name = spec.fidelity_name or name
    if fid_name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(fid_name, spec.build.get())
    return fid_name
