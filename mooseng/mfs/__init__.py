"""MooseFS operations of the master agent: daemons, files in DATA_PATH, mfscli parsing."""

from mooseng.mfs.controller import MfsController, MfsPaths, PromotionAborted, PromotionError

__all__ = ["MfsController", "MfsPaths", "PromotionAborted", "PromotionError"]
