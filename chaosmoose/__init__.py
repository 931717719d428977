"""chaosmoose: Chaos Toolkit extension for the MooseNG lab.

``discover()`` names every activity module (``ACTIVITY_MODULES``: the ``probes`` and
``actions`` modules of every subpackage, found on disk); the Docker client factory is
``chaosmoose._docker.docker_client`` (re-exported lazily here as ``docker_client``). This
module imports nothing heavy: client containers import ``chaosmoose.workload.runner``
through it with only the standard library available.
"""

from typing import Any

__version__ = "0.1.0"


def _activity_modules() -> tuple[str, ...]:
    """Every subpackage's ``probes`` then ``actions`` module, packages in name order.

    Found on disk by convention (standard library only, nothing imported), so a new family
    package with ``actions.py``/``probes.py`` is discovered without editing this file.
    """
    from chaosmoose._packages import subpackage_modules

    probes, actions = subpackage_modules("probes"), subpackage_modules("actions")
    return tuple(sorted(probes + actions,
                        key=lambda m: (m.rsplit(".", 1)[0], m.endswith(".actions"))))


ACTIVITY_MODULES = _activity_modules()

__all__ = ["ACTIVITY_MODULES", "__version__", "discover", "docker_client"]


def docker_client() -> Any:
    """The process-wide Docker API client (from DOCKER_HOST and friends)."""
    from chaosmoose._docker import docker_client as factory

    return factory()


def discover(discover_system: bool = True) -> dict:
    """Discover chaosmoose's probes and actions (for ``chaos discover chaosmoose``).

    With ``discover_system`` the configured masters' /status answers are included as the
    system description (unreachable masters are reported, not fatal).
    """
    import logging

    from chaoslib.discovery.discover import (
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    logger = logging.getLogger("chaostoolkit")
    logger.info("Discovering capabilities from chaosmoose")
    discovery = initialize_discovery_result("chaosmoose", __version__, "mooseng")
    for module in ACTIVITY_MODULES:
        finder = discover_actions if module.endswith(".actions") else discover_probes
        discovery["activities"].extend(finder(module))
    if discover_system:
        discovery["system"] = _discover_system()
    return discovery


def _discover_system() -> dict:
    """What the configured masters say about themselves."""
    from chaoslib.exceptions import ActivityFailed

    from chaosmoose import _settings
    from chaosmoose._http import Reply, get_all

    try:
        masters = _settings.masters()
        replies = get_all(masters, "/status", _settings.http_timeout())
    except ActivityFailed as exc:
        return {"error": str(exc)}
    return {name: (r.body if isinstance(r, Reply) else {"error": str(r)})
            for name, r in replies.items()}
