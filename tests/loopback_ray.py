"""`ray start …` for multi-node test clusters on one machine, every server bound to 127.0.0.1.

Ray 2.60's `ray start --node-ip-address 127.0.0.1` swaps the loopback address for the machine's
routable one and binds GCS, raylet and agents on all interfaces: a test cluster would be reachable
from the network. Keeping the loopback address keeps every listener on it (tests/test_cluster.py
checks). Run as `python tests/loopback_ray.py start --head …`, arguments as for `ray`.
"""
import sys

from ray._private import services

_resolve = services.resolve_ip_for_localhost
services.resolve_ip_for_localhost = lambda host: host if host.startswith("127.") else _resolve(host)

from ray.scripts.scripts import main  # noqa: E402 - after the patch, which it reads at call time

if __name__ == "__main__":
    sys.exit(main())
