"""Ship the recommended artifact: a bundle in the run folder (bundle), installed on boards with verified hashes and a smoke inference (install).

from edgecompress.ship import build_bundle, install
build_bundle(run_dir, report)                 # <run>/ship/
install(run_dir / "ship", "ssh://pi@board")   # atomically at ~/models/NAME, or path=...
"""

from edgecompress.ship.bundle import SHIP_DIR, BundleError, build_bundle, load_manifest

__all__ = ["SHIP_DIR", "BundleError", "build_bundle", "load_manifest"]
