"""Render the MooseFS daemons' configuration files from the settings.

MooseFS reads ``KEY = VALUE`` files. Every daemon is given its config by an
absolute path (the daemons chdir to DATA_PATH; a relative path breaks
``reload``). Addresses of the master always point at the container's local
leader router (see :mod:`mooseng.router`), bound on the container's own
address because MooseFS refuses masters in 127.0.0.0/8.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from mooseng import settings

CONFIG_DIR = Path("/etc/mfs")
MASTER_CFG = CONFIG_DIR / "mfsmaster.cfg"
METALOGGER_CFG = CONFIG_DIR / "mfsmetalogger.cfg"
CHUNKSERVER_CFG = CONFIG_DIR / "mfschunkserver.cfg"
EXPORTS_CFG = CONFIG_DIR / "mfsexports.cfg"
HDD_CFG = CONFIG_DIR / "mfshdd.cfg"
EMPTY_METADATA = Path("/var/lib/mfs/metadata.mfs.empty")
MFS_USER = "mfs"


@dataclass(frozen=True)
class Layout:
    """Where one container keeps its persistent state."""

    data_dir: Path

    @property
    def mfs_data(self) -> Path:
        """MooseFS DATA_PATH (metadata, changelogs, chunkserver state)."""
        return self.data_dir / "mfs"

    @property
    def tiers(self) -> Path:
        """Parent folder of the chunkserver's storage tier volumes."""
        return self.data_dir / "tiers"

    @classmethod
    def from_settings(cls) -> Layout:
        """The layout configured by MOOSENG_DATA_DIR."""
        return cls(Path(str(settings.read("MOOSENG_DATA_DIR"))))


def render(values: dict[str, object]) -> str:
    """A MooseFS config file body from ordered key/value pairs."""
    return "".join(f"{key} = {value}\n" for key, value in values.items())


def chown_mfs(path: Path) -> None:
    """Give ``path`` to the mfs user (the daemons drop privileges to it)."""
    try:
        entry = pwd.getpwnam(MFS_USER)
    except KeyError:
        return
    os.chown(path, entry.pw_uid, entry.pw_gid)


def ensure_dir(path: Path) -> Path:
    """Create ``path`` if needed, owned by mfs; return it."""
    path.mkdir(parents=True, exist_ok=True)
    chown_mfs(path)
    return path


def master_values(layout: Layout) -> dict[str, object]:
    """mfsmaster.cfg: ports, data path, exports, and replication that starts at once."""
    return {
        "WORKING_USER": MFS_USER,
        "WORKING_GROUP": MFS_USER,
        "DATA_PATH": layout.mfs_data,
        "EXPORTS_FILENAME": EXPORTS_CFG,
        "MATOML_LISTEN_PORT": settings.read("MOOSENG_MATOML_PORT"),
        "MATOCS_LISTEN_PORT": settings.read("MOOSENG_MATOCS_PORT"),
        "MATOCL_LISTEN_PORT": settings.read("MOOSENG_MATOCL_PORT"),
        # A promoted master must restore redundancy at once, not after the default 60 s.
        "REPLICATIONS_DELAY_INIT": 0,
        "CHUNKS_LOOP_MIN_TIME": 60,
        # Containers may not renice or lock memory; don't ask.
        "NICE_LEVEL": 0,
        "DISABLE_OOM_KILLER": 0,
        "BACK_LOGS": 50,
        "BACK_META_KEEP_PREVIOUS": 3,
    }


def metalogger_values(layout: Layout, router_address: str) -> dict[str, object]:
    """mfsmetalogger.cfg: follow whoever leads, through the local router."""
    return {
        "WORKING_USER": MFS_USER,
        "WORKING_GROUP": MFS_USER,
        "DATA_PATH": layout.mfs_data,
        "MASTER_HOST": router_address,
        "MASTER_PORT": settings.read("MOOSENG_ROUTER_ML_PORT"),
        "MASTER_RECONNECTION_DELAY": settings.read("MOOSENG_RECONNECT_DELAY"),
        "META_DOWNLOAD_FREQ": 1,
        "BACK_LOGS": 50,
    }


def chunkserver_values(layout: Layout, router_address: str, own_address: str) -> dict[str, object]:
    """mfschunkserver.cfg: announce the real address, reach the leader through the router."""
    values: dict[str, object] = {
        "WORKING_USER": MFS_USER,
        "WORKING_GROUP": MFS_USER,
        "DATA_PATH": layout.mfs_data,
        "HDD_CONF_FILENAME": HDD_CFG,
        "HDD_LEAVE_SPACE_DEFAULT": settings.read("MOOSENG_CS_LEAVE_SPACE"),
        "MASTER_HOST": router_address,
        "MASTER_PORT": settings.read("MOOSENG_ROUTER_CS_PORT"),
        "MASTER_RECONNECTION_DELAY": settings.read("MOOSENG_RECONNECT_DELAY"),
        "CSSERV_LISTEN_HOST": own_address,
        "CSSERV_LISTEN_PORT": settings.read("MOOSENG_CS_PORT"),
        "NICE_LEVEL": 0,
        "DISABLE_OOM_KILLER": 0,
    }
    labels = str(settings.read("MOOSENG_CS_LABELS")).strip()
    if labels:
        values["LABELS"] = labels
    return values


def exports_body() -> str:
    """mfsexports.cfg: the lab trusts its own network; ``admin`` allows mfsscadmin."""
    return "*\t/\trw,alldirs,admin,maproot=0:0\n*\t.\trw\n"


def write(path: Path, body: str) -> Path:
    """Write a config file readable by the mfs user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o644)
    return path


def write_master_configs(layout: Layout, router_address: str) -> None:
    """Everything a master container needs: mfsmaster, mfsmetalogger and exports."""
    ensure_dir(layout.data_dir)
    ensure_dir(layout.mfs_data)
    write(MASTER_CFG, render(master_values(layout)))
    write(METALOGGER_CFG, render(metalogger_values(layout, router_address)))
    write(EXPORTS_CFG, exports_body())


def write_chunkserver_configs(layout: Layout, router_address: str, own_address: str) -> list[Path]:
    """mfschunkserver.cfg and mfshdd.cfg; returns the tier folders."""
    ensure_dir(layout.data_dir)
    ensure_dir(layout.mfs_data)
    folders = [ensure_dir(layout.tiers / str(tier)) for tier in settings.read("MOOSENG_CS_TIERS")]
    write(CHUNKSERVER_CFG, render(chunkserver_values(layout, router_address, own_address)))
    write(HDD_CFG, "".join(f"{folder}\n" for folder in folders))
    return folders


def seed_empty_metadata(layout: Layout) -> bool:
    """Create metadata for a brand-new file system; False when metadata already exists."""
    target = layout.mfs_data / "metadata.mfs"
    if any(layout.mfs_data.glob("metadata*")) or any(layout.mfs_data.glob("changelog*")):
        return False
    ensure_dir(layout.mfs_data)
    shutil.copyfile(EMPTY_METADATA, target)
    chown_mfs(target)
    return True
