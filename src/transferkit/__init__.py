"""transferkit: transfer learning for small labelled data sets."""

from ._compat import ensure_torchvision_ops

# Before anything imports timm or torchvision (see _compat).
ensure_torchvision_ops()
