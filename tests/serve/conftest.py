"""The export tests' tiny models, exports and real inputs (session fixtures, built once)."""

from ..export.conftest import exports, real_inputs, tiny_models  # noqa: F401
