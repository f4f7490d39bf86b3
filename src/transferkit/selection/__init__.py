"""Choosing what to transfer and how.

- :mod:`.scores`: transferability scores (LogME, LEEP, NCE, H-score), pure numpy.
- :mod:`.distance`: domain distance (MMD, proxy A-distance) between two feature sets.
"""

from .distance import mmd, proxy_a_distance
from .scores import hscore, leep, logme, nce

__all__ = ["hscore", "leep", "logme", "mmd", "nce", "proxy_a_distance"]
