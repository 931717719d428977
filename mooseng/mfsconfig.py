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
from dataclasses import dataclass
from pathlib import Path

from mooseng import settings, tiers

CONFIG_DIR = Path("/etc/mfs")
MASTER_CFG = CONFIG_DIR / "mfsmaster.cfg"
METALOGGER_CFG = CONFIG_DIR / "mfsmetalogger.cfg"
CHUNKSERVER_CFG = CONFIG_DIR / "mfschunkserver.cfg"
EXPORTS_CFG = CONFIG_DIR / "mfsexports.cfg"
HDD_CFG = CONFIG_DIR / "mfshdd.cfg"
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
    """mfsmaster.cfg: ports, data path, exports, and replication that starts at once. With the
    reply barrier on (``MOOSENG_BARRIER``), mfsmaster serves clients on the loopback only, on
    ``MOOSENG_MFSMASTER_CLIENT_PORT``: the barrier serves ``MOOSENG_MATOCL_PORT``."""
    values: dict[str, object] = {
        "WORKING_USER": MFS_USER,
        "WORKING_GROUP": MFS_USER,
        "DATA_PATH": layout.mfs_data,
        "EXPORTS_FILENAME": EXPORTS_CFG,
        "MATOML_LISTEN_PORT": settings.read("MOOSENG_MATOML_PORT"),
        "MATOCS_LISTEN_PORT": settings.read("MOOSENG_MATOCS_PORT"),
        "MATOCL_LISTEN_PORT": settings.read("MOOSENG_MATOCL_PORT"),
        # A promoted master must restore redundancy at once, not after the default 60 s.
        "REPLICATIONS_DELAY_INIT": 0,
        # A lab's chunk counts are small: visit every chunk once a minute (default 300;
        # 60 s is MooseFS 3.0's floor, MINLOOPTIME in mfsmaster/chunks.c: a lower value is
        # raised to it with a syslog notice) and let each chunkserver take part in more
        # replications at once (defaults 2,1,1,4 and 10,5,2,5: endangered, undergoal,
        # rebalance near the mean, other rebalance). Endangered and undergoal chunks do not
        # wait for the loop (they are queued at once), so a lost chunkserver's chunks regain
        # their goal in seconds; what the loop paces is a marked tier's "ready" verdict.
        "CHUNKS_LOOP_MIN_TIME": 60,
        "CHUNKS_WRITE_REP_LIMIT": "10,10,2,4",
        "CHUNKS_READ_REP_LIMIT": "20,20,5,10",
        # ... and delete the surplus copies a returning server or an undone removal leaves
        # at a lab's pace too (defaults 10 and 25 per chunkserver).
        "CHUNKS_SOFT_DEL_LIMIT": 50,
        "CHUNKS_HARD_DEL_LIMIT": 100,
        # Containers may not renice or lock memory; don't ask.
        "NICE_LEVEL": 0,
        "DISABLE_OOM_KILLER": 0,
        "BACK_LOGS": 50,
        "BACK_META_KEEP_PREVIOUS": 3,
    }
    if settings.read("MOOSENG_BARRIER"):
        values["MATOCL_LISTEN_HOST"] = "127.0.0.1"
        values["MATOCL_LISTEN_PORT"] = settings.read("MOOSENG_MFSMASTER_CLIENT_PORT")
    return values


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
        # A tier failed by `mooseng disk fail` (mooseng/mfs/disks.py) must not stop a restarted
        # mfschunkserver: 3.0.117 refuses to start when a folder line cannot be used.
        "ALLOW_STARTING_WITH_INVALID_DISKS": 1,
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
    """mfschunkserver.cfg and mfshdd.cfg (every tier folder with its size limit from
    MOOSENG_CS_TIER_SIZES, :mod:`mooseng.tiers`); returns the tier folders."""
    ensure_dir(layout.data_dir)
    ensure_dir(layout.mfs_data)
    bounded = tiers.configured_tiers(layout.tiers)
    folders = [ensure_dir(tier.path) for tier in bounded]
    write(CHUNKSERVER_CFG, render(chunkserver_values(layout, router_address, own_address)))
    write(HDD_CFG, tiers.render_hdd_cfg(tiers.start_hdd_lines(bounded)))
    return folders
