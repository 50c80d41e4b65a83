"""Keep a local Ray on 127.0.0.1: every Ray process of this machine bound to loopback only.

Ray on Linux replaces a loopback address by the machine's primary interface address wherever
it resolves one: ``ray.init(_node_ip_address="127.0.0.1")`` starts a node whose GCS, raylet,
object manager, runtime-env agent and workers listen on the primary interface (or on every
interface), and ``ray.init(address="127.0.0.1:PORT")`` dials ``PRIMARY_IP:PORT``
(``ray._private.services.resolve_ip_for_localhost``, which asks ``get_node_ip_address``).
Ray itself skips that resolution where clusters are disabled (its macOS/Windows default,
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read once when ray is imported into
``ray._private.ray_constants.ENABLE_RAY_CLUSTER``): a loopback address then stays loopback,
and a node whose ``node_ip_address`` is 127.0.0.1 binds its servers there. `loopback_ray`
applies that switch for the duration of a ``ray.init`` (for the driver's connection and the
processes it starts) and restores it afterwards.

Measured here with ray 2.60 (``ss -tlnp``): without it, a private ``ray.init`` listened on
``*`` (GCS, raylet, workers) and 192.0.2.2 (runtime-env agent); with it, on 127.0.0.1 only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: The Ray environment switch (read at ``import ray``) behind the constant set here.
RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"


@contextmanager
def loopback_ray() -> Iterator[None]:
    """Within the block, Ray keeps loopback addresses as they are (see module docstring).

    Sets ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (inherited by the Ray processes started in
    the block) and Ray's already-imported constant; both are restored on exit.
    """
    # lazy: ray is optional (--executor ray)
    from ray._private import ray_constants

    saved_env = os.environ.get(RAY_CLUSTER_ENV)
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[RAY_CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(RAY_CLUSTER_ENV, None)
        else:
            os.environ[RAY_CLUSTER_ENV] = saved_env
